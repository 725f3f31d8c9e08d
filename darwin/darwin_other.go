//go:build !darwin

package darwin

import (
	"net"

	"github.com/attestd/attestd/bridge/provider"
)

func newDeviceCheck(DeviceCheckOptions) (provider.Provider, error) { return nil, ErrUnsupported }

func selfIdentity() (Identity, error) { return Identity{}, ErrUnsupported }

func activateSocket(string) ([]net.Listener, error) { return nil, ErrUnsupported }

func newPeerRequirement(string) (PeerChecker, error) { return nil, ErrUnsupported }
