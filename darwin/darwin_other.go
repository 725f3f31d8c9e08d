//go:build !darwin

package darwin

import (
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
