package diag

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/attestd/attestd/bridge/client"
	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/pool"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/server"
	"github.com/attestd/attestd/darwin"
)

// socketCheckRoundTrip serves the development provider on a private
// socket and asks it for a token with the client, as a host would.
func socketCheckRoundTrip(ctx context.Context, env Env, cfg SelftestConfig) Check {
	c := newCheck("socket-roundtrip")
	start := env.Now()
	value, err := tokenFromTempServer(ctx, cfg, nil)
	c.took(env.Now().Sub(start))
	if err != nil {
		c.fail(err)
		return c
	}
	v, err := header.Decode(value)
	if err != nil {
		c.set(Fail, "the served value does not decode: "+err.Error())
		return c
	}
	c.set(Pass, fmt.Sprintf("a private Unix socket served a %s header value (fingerprint %s) to this user", v.Kind, header.Fingerprint(value)))
	return c
}

// tokenFromTempServer starts a server with the development provider on a
// socket in a new private directory, with checkPeer, asks it for one
// token through the client, and stops it again.
func tokenFromTempServer(ctx context.Context, cfg SelftestConfig, checkPeer func(*net.UnixConn) error) (string, error) {
	dir, err := os.MkdirTemp(cfg.TempDir, "attestd-st-")
	if err != nil {
		return "", fmt.Errorf("make a socket directory: %w", err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return "", fmt.Errorf("listen on %s: %w", path, err)
	}
	p := pool.New(pool.Config{Provider: provider.Dev{}, Size: 1})
	defer p.Close()
	// A generous deadline: this checks the path, not the pool's speed.
	srv := server.New(server.Config{Tokens: p, Version: cfg.Version, Deadline: 5 * time.Second, CheckPeer: checkPeer})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		<-served
	}()
	cl := client.New(path)
	defer cl.Close()
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return cl.Token(tctx)
}

// peerRequirementCheck serves the development provider with a peer
// requirement the selftest itself satisfies, then with one it does not,
// and asks for a token as the peer each time.
func peerRequirementCheck(ctx context.Context, env Env, cfg SelftestConfig, sig darwin.Signature, sigErr error) Check {
	c := newCheck("peer-requirement")
	if sigErr != nil {
		c.set(Skipped, "the own code signature could not be read (see identity)")
		return c
	}
	served, ok1 := servedHalf(ctx, env, cfg, sig, &c)
	refused, ok2 := refusedHalf(ctx, env, cfg, &c)
	status := Pass
	if !ok1 || !ok2 {
		status = Fail
	}
	c.set(status, served+"; "+refused)
	return c
}

// servedHalf asks, as a peer that satisfies the requirement, a server
// that demands it; it says what happened and whether that was right.
func servedHalf(ctx context.Context, env Env, cfg SelftestConfig, sig darwin.Signature, c *Check) (part string, ok bool) {
	req := selfRequirement(sig)
	if req == "" {
		c.fact("served", nil)
		return "served half skipped: this binary is unsigned, so no requirement admits it (sign it, even ad hoc with codesign -s -, to check it)", true
	}
	c.fact("servedRequirement", req)
	chk, err := env.NewPeerRequirement(req)
	if err != nil {
		return fmt.Sprintf("requirement %s does not compile: %v", req, err), false
	}
	v, err := tokenFromTempServer(ctx, cfg, chk)
	if err != nil {
		c.fact("served", false)
		return fmt.Sprintf("a peer that satisfies %s was not served: %v", req, err), false
	}
	c.fact("served", true)
	return fmt.Sprintf("a peer that satisfies %s was served (fingerprint %s)", req, header.Fingerprint(v)), true
}

// refusedHalf asks a server that demands a requirement this binary does
// not satisfy; it must refuse with peer_refused.
func refusedHalf(ctx context.Context, env Env, cfg SelftestConfig, c *Check) (part string, ok bool) {
	c.fact("refusedRequirement", otherRequirement)
	chk, err := env.NewPeerRequirement(otherRequirement)
	if err != nil {
		return fmt.Sprintf("requirement %s does not compile: %v", otherRequirement, err), false
	}
	_, err = tokenFromTempServer(ctx, cfg, chk)
	reason := provider.ReasonOf(err)
	c.fact("refusedReason", reason)
	switch {
	case err == nil:
		return fmt.Sprintf("a peer that does not satisfy %s was served", otherRequirement), false
	case reason != "peer_refused":
		return fmt.Sprintf("a peer that does not satisfy %s failed with reason %s, want peer_refused: %v", otherRequirement, reason, err), false
	}
	return "one that does not was refused with peer_refused", true
}
