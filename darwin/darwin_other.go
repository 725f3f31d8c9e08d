//go:build !darwin

package darwin

import (
	"context"
	"net"

	"github.com/attestd/attestd/bridge/provider"
)

const available = false

func newDeviceCheck(DeviceCheckOptions) (provider.Provider, error) { return nil, ErrUnsupported }

func guiSession() (bool, error) { return false, ErrUnsupported }

func deviceCheckSupported() (bool, error) { return false, ErrUnsupported }

func osVersion() (string, error) { return "", ErrUnsupported }

func selfIdentity() (Identity, error) { return Identity{}, ErrUnsupported }

func selfSignature() (Signature, error) { return Signature{}, ErrUnsupported }

func activateSocket(string) ([]net.Listener, error) { return nil, ErrUnsupported }

func newPeerRequirement(string) (PeerChecker, error) { return nil, ErrUnsupported }

func runMainLoop(f func() int) int { return f() }

func mainLoopRunning() (bool, string) { return false, "not macOS: there is no main run loop to run" }

func pingMainQueue(context.Context) error { return ErrUnsupported }

func translated() (bool, error) { return false, ErrUnsupported }

func newAppAttest(AppAttestOptions) (AppAttestService, error) { return nil, ErrUnsupported }

func appAttestSupported() (bool, error) { return false, ErrUnsupported }

func newKeychainNative() (keychainNative, error) { return nil, ErrUnsupported }
