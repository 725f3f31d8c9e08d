package main

import (
	"testing"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/internal/appattestsim/regtest"
	"github.com/attestd/attestd/verify/redisreplay/redistest"
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

// TestCodexE2EAppAttestThroughGate: the real codex app-server behind the
// bridge with the App Attest simulator, and "attestd gate" in proxy mode
// between codex and its backend. The bridge registers its key with the
// gate; every model request passes the gate's check, those with App
// Attest values (each with its key id) without a call to Apple, and the
// development tokens of the first moments under --allow-dev. (codex's
// requests without attestation, the model list, get 401 from the gate;
// codex carries on without them.)
func TestCodexE2EAppAttestThroughGate(t *testing.T) {
	codexBinary(t)
	b := newBackend(t)
	apple, env, args := aaGateArgs(t, redistest.Start(t).URL())
	g := startGateProc(t, env, append(args, "--upstream", b.srv.URL)...)
	c := startBridgeClient(t, codexHomeAt(t, g.URL(), false), "--provider", "appattest-sim", "--app-id", aaAppID,
		"--appattest-register", g.URL())
	thread := c.session(t.TempDir())
	turns := []string{"hi", "again", "and again", "once more"}
	for _, text := range turns {
		c.turn(thread, text)
	}
	if code := c.close(); code != 0 {
		t.Errorf("bridge exit status %d, want 0", code)
	}
	reqs := b.modelRequests()
	if len(reqs) < len(turns) {
		t.Fatalf("%d model requests passed the gate, want %d:\n%v\ngate log:\n%s", len(reqs), len(turns), b.all(), g.Output())
	}
	aa, dev, key := 0, 0, ""
	for _, r := range reqs {
		switch {
		case r.hasHeader:
			t.Errorf("%s %s: the attestation header passed the gate", r.method, r.path)
		case r.kind == "aa" && r.keyID != "" && (key == "" || r.keyID == key):
			aa, key = aa+1, r.keyID
		case r.kind == "dev" && r.keyID == "" && aa == 0:
			dev++
		default:
			t.Errorf("%s %s: kind %q, key id %q (after %d App Attest values)", r.method, r.path, r.kind, r.keyID, aa)
		}
	}
	if aa == 0 {
		t.Fatalf("no model request carried an App Attest value:\n%v\ngate log:\n%s\nbridge stderr:\n%s", b.all(), g.Output(), c.stderr)
	}
	if n := len(apple.Requests()); n != dev {
		t.Errorf("Apple was asked %d times for %d development tokens and %d App Attest values; want once per development token", n, dev, aa)
	}
	t.Logf("%d model requests through the gate: %d App Attest, %d development", len(reqs), aa, dev)
}
