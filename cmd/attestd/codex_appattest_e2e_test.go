package main

import (
	"testing"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/internal/appattestsim/regtest"
)

// TestCodexE2EAppAttestSim: the real codex app-server behind the bridge
// with the App Attest simulator. Once the key is registered, model requests
// carry App Attest values upstream that verify against the registered key;
// development tokens made before the registration may come first.
func TestCodexE2EAppAttestSim(t *testing.T) {
	codexBinary(t)
	const appID = "ABCDE12345.dev.attestd.codex"
	srv := regtest.New(t, appID)
	b := newBackend(t)
	c := startBridgeClient(t, codexHome(t, b, false), "--provider", "appattest-sim", "--app-id", appID,
		"--appattest-register", srv.URL)
	thread := c.session(t.TempDir())
	srv.Expect(t, "register", "active")
	for _, text := range []string{"hi", "again", "and again", "once more"} {
		c.turn(thread, text)
	}
	if code := c.close(); code != 0 {
		t.Errorf("bridge exit status %d, want 0", code)
	}
	aa := 0
	for _, r := range b.modelRequests() {
		env, err := header.ParseEnvelope(r.attestation)
		if err != nil || env.Status != header.StatusOK {
			t.Fatalf("%s %s: x-oai-attestation %q: %v", r.method, r.path, r.attestation, err)
		}
		switch regtest.Kind(env.Token) {
		case "aa":
			aa++
			if _, err := srv.Check(env.Token); err != nil {
				t.Errorf("%s %s: %v", r.method, r.path, err)
			}
		case header.KindDev:
			if aa > 0 {
				t.Errorf("%s %s: a development token after an App Attest value", r.method, r.path)
			}
		default:
			t.Errorf("%s %s: value %q", r.method, r.path, env.Token)
		}
	}
	if aa == 0 {
		t.Fatalf("no model request carried an App Attest value:\n%v\nbridge stderr:\n%s", b.all(), c.stderr)
	}
	t.Logf("%d model requests, %d with App Attest values", len(b.modelRequests()), aa)
}
