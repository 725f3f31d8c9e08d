package darwin_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/darwin"
)

// A DeviceCheck provider fails up front where tokens cannot be made, with
// a reason for clients and a hint for people.
func ExampleNewDeviceCheck() {
	p, err := darwin.NewDeviceCheck(darwin.DeviceCheckOptions{Timeout: 5 * time.Second})
	if err != nil {
		// "unsupported" off macOS, "no_gui_session" over SSH.
		fmt.Println(provider.ReasonOf(err), hint.Of(err))
		return
	}
	ans, err := p.Generate(context.Background())
	if err != nil {
		code, ok := provider.DCErrorCodeOf(err) // Apple's DCError code, if any
		fmt.Println(provider.ReasonOf(err), code, ok)
		return
	}
	fmt.Println(ans.Kind, "token", header.Fingerprint(ans.Token)) // never log the token itself
}

// Serving launchd's socket, or falling back to a socket of one's own when
// launchd did not start the process.
func ExampleActivateSocket() {
	ls, err := darwin.ActivateSocket(darwin.DefaultLaunchdSocket)
	switch {
	case errors.Is(err, syscall.ESRCH):
		fmt.Println("not started by launchd; listen on a socket of our own")
	case err != nil: // an *ActivateError, or darwin.ErrUnsupported off macOS
		fmt.Println(err)
		if h := hint.Of(err); h != "" {
			fmt.Println("hint:", h)
		}
	}
	for _, l := range ls {
		l.Close()
	}
}

// Refusing clients that are not signed by one's own team.
func ExampleNewPeerRequirement() {
	check, err := darwin.NewPeerRequirement(`anchor apple generic and certificate leaf[subject.OU] = "ABCDE12345"`)
	if err != nil {
		fmt.Println(err)
		return
	}
	serve := func(conn *net.UnixConn) {
		if err := check(conn); err != nil { // wraps darwin.ErrPeerRejected
			conn.Close()
			return
		}
		// … answer requests …
	}
	_ = serve
}

// App Attest: one key per install, kept in the login Keychain, attested
// once, then an assertion for each request. Where App Attest cannot be
// used, DeviceCheck tokens serve instead.
func ExampleNewAppAttest() {
	ctx := context.Background()
	aa, err := darwin.NewAppAttest(darwin.AppAttestOptions{Timeout: 5 * time.Second})
	if err != nil {
		// "unsupported" before macOS 27, "no_gui_session" over SSH.
		fmt.Println(provider.ReasonOf(err), hint.Of(err))
		return
	}
	store, err := darwin.NewKeychain(darwin.KeychainOptions{
		Service: darwin.KeychainService("com.example.host.attestd", "com.example.attestd"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	keyID, err := store.Get(ctx)
	if errors.Is(err, darwin.ErrNotFound) {
		if keyID, err = aa.GenerateKey(ctx); err == nil {
			err = store.Set(ctx, keyID)
		}
		// Then register it: a challenge from the server,
		// aa.AttestKey(ctx, keyID, SHA-256(challenge)), and the
		// attestation posted back.
	}
	if err != nil {
		fmt.Println(err, hint.Of(err))
		return
	}
	clientDataHash := sha256.Sum256([]byte("what the request signs"))
	assertion, err := aa.GenerateAssertion(ctx, keyID, clientDataHash[:])
	switch {
	case errors.Is(err, darwin.ErrInvalidKey):
		_ = store.Delete(ctx) // make a new key and register it again
	case err != nil:
		fmt.Println(provider.ReasonOf(err), err)
	default:
		fmt.Println("assertion", header.Fingerprint(assertion))
	}
}
