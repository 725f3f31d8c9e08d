package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attestd/attestd/internal/appattestsim/regtest"
)

func TestAppAttestUsageErrors(t *testing.T) {
	t.Parallel()
	reg := "http://127.0.0.1:1"
	for _, c := range []struct {
		args []string
		err  string
	}{
		{[]string{"serve", "--provider", "appattest"}, "--provider appattest needs --appattest-register URL"},
		{[]string{"bridge", "--provider", "appattest-sim", "--appattest-register", reg, "--", "true"}, "needs --app-id"},
		{[]string{"serve", "--provider", "dev", "--appattest-register", reg}, "go with --provider appattest, appattest-sim or auto"},
		{[]string{"bridge", "--app-id", "T.b", "--", "true"}, "go with --provider appattest"},
		{[]string{"serve", "--provider", "appattest", "--appattest-register", "http://example.com"}, "plain http to a host that is not this Mac"},
		{[]string{"serve", "--provider", "appattest-sim", "--app-id", "T.b", "--appattest-register", reg, "--appattest-ready", "-1"}, "--appattest-ready must not be negative"},
		{[]string{"probe", "--provider", "appattest-sim"}, "needs --app-id"},
		{[]string{"probe", "--provider", "appattest-sim", "--app-id", "T.b", "--team-id", "T", "--key-id", "K", "--key", "f"}, "the lifetime is DeviceCheck's"},
	} {
		code, _, stderr := runCLI(t, nil, "", c.args...)
		if code != 2 || !strings.Contains(stderr, c.err) {
			t.Errorf("attestd %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(c.args, " "), code, stderr, c.err)
		}
	}
}

// TestServeAppAttestSim: the binary with --provider appattest-sim registers
// its key, then hands out App Attest values; status names the provider,
// the registration and the kind served.
func TestServeAppAttestSim(t *testing.T) {
	t.Parallel()
	const appID = "ABCDE12345.dev.attestd.cli"
	srv := regtest.New(t, appID)
	sock := filepath.Join(t.TempDir(), "attestd.sock")
	d := startDaemon(t, sock, "--provider", "appattest-sim", "--app-id", appID, "--appattest-register", srv.URL)
	d.waitLog(t, "App Attest: key registered")
	var value string
	for range 4 { // development tokens made before the registration come first
		out, err := exec.Command(attestdBinary(t), "token", "--socket", sock).Output()
		if err != nil {
			t.Fatal(err)
		}
		if v := strings.TrimSpace(string(out)); regtest.Kind(v) == "aa" {
			value = v
			break
		}
	}
	if _, err := srv.Check(value); err != nil {
		t.Fatalf("no App Attest value that verifies in four tokens (%v):\n%s", err, d.log())
	}
	out, err := exec.Command(attestdBinary(t), "status", "--socket", sock).Output()
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Provider string
		Pool     struct {
			LastKind  string
			AppAttest struct{ Registered bool }
		}
	}
	if err := json.Unmarshal(out, &st); err != nil || st.Provider != "appattest-sim" || !st.Pool.AppAttest.Registered || st.Pool.LastKind != "aa" {
		t.Fatalf("status %+v, %v:\n%s", st, err, out)
	}
}

// TestProbeAppAttestSim: probe measures the simulator's assertions and one
// registration round trip, as it measures App Attest on a Mac.
func TestProbeAppAttestSim(t *testing.T) {
	t.Parallel()
	const appID = "ABCDE12345.dev.attestd.probe"
	srv := regtest.New(t, appID)
	code, out, stderr := runCLI(t, nil, "", "probe", "--provider", "appattest-sim", "--app-id", appID,
		"--appattest-register", srv.URL, "--count", "5", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r struct {
		Provider  string
		AppAttest struct {
			Key          string
			Registration struct{ Environment, Error string }
			Assertions   struct{ OK, Count int }
		}
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	a := r.AppAttest
	if r.Provider != "aa" || a.Key == "" || a.Registration.Environment != "development" || a.Assertions.OK != 5 {
		t.Fatalf("report %+v:\n%s", r, out)
	}
	srv.Expect(t, "register", "active")
}
