package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/internal/probe"
	"github.com/attestd/attestd/internal/probe/probetest"
	"github.com/attestd/attestd/verify/devicechecktest"
)

// runProbeCLI runs "attestd probe args…" in-process, as runCLI does,
// with clock as the probe's clock (nil: the real one), and returns the
// exit code, stdout and stderr.
func runProbeCLI(t *testing.T, clock probe.Clock, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	s := &streams{in: strings.NewReader(""), out: &out, err: &errb, getenv: func(string) string { return "" }}
	code := runCommand(context.Background(), s, newProbeCommand(clock), args)
	return code, out.String(), errb.String()
}

func runProbeJSON(t *testing.T, clock probe.Clock, args ...string) (int, probe.Report, string) {
	t.Helper()
	code, out, stderr := runProbeCLI(t, clock, append([]string{"--json"}, args...)...)
	var r probe.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("probe --json printed %q (stderr %q): %v", out, stderr, err)
	}
	return code, r, stderr
}

// TestProbeDevLatency is "attestd probe --provider dev --count N --json"
// as it runs on Linux: the figures follow the dev provider's latency.
func TestProbeDevLatency(t *testing.T) {
	t.Parallel()
	const latency = 2 * time.Millisecond
	code, r, stderr := runProbeJSON(t, nil, "--provider", "dev", "--dev-latency", latency.String(), "--count", "8")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	l := r.Latency
	if r.Provider != "dev" || l == nil || r.Lifetime != nil {
		t.Fatalf("report %+v, want dev latency only", r)
	}
	if l.Count != 8 || l.OK != 8 || l.Errors != 0 || l.TokenBytes != 32 || l.ColdError != "" {
		t.Errorf("latency %+v, want 8 ok 32-byte tokens", l)
	}
	// Lower bounds only: each call waits at least the latency.
	lat := float64(latency.Microseconds()) / 1000
	if l.ColdMs < lat || l.MinMs < lat {
		t.Errorf("cold %.3f ms, min %.3f ms; want at least %.3f ms", l.ColdMs, l.MinMs, lat)
	}
	if !(l.MinMs <= l.P50Ms && l.P50Ms <= l.P90Ms && l.P90Ms <= l.P99Ms && l.P99Ms <= l.MaxMs) || l.MeanMs < l.MinMs || l.MeanMs > l.MaxMs {
		t.Errorf("figures out of order: %+v", l)
	}
}

func TestProbeUsage(t *testing.T) {
	t.Parallel()
	key := writeProbeKey(t, mustKey(t))
	tests := [][]string{
		{"--count", "-1"},
		{"--timeout", "0s"},
		{"--team-id", "T"},
		{"--count", "0"},
		{"--ages", "1m,30s"},
		{"--ages", "-5s"},
		{"--environment", "ftp://x"},
		{"--provider", "dev", "--team-id", "T", "--key-id", "K", "--key", key}, // dev tokens to Apple
		{"stray"},
	}
	for _, args := range tests {
		code, _, stderr := runCLI(t, nil, "", append([]string{"probe"}, args...)...)
		if code != 2 || !strings.Contains(stderr, "attestd: error:") {
			t.Errorf("probe %q: exit %d, stderr %q; want a usage error", args, code, stderr)
		}
	}
}

func mustKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func writeProbeKey(t *testing.T, key *ecdsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "AuthKey_KEY1234567.p8")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestProbeCLIWithKey runs the whole command against the fake Apple with
// the dev provider (allowed because --environment is a URL) and the step
// clock.
func TestProbeCLIWithKey(t *testing.T) {
	t.Parallel()
	key := mustKey(t)
	srv := devicechecktest.NewServer(&key.PublicKey, "TEAMID1234", "KEY1234567")
	t.Cleanup(srv.Close)
	clock := probetest.NewStepClock()
	srv.Now = clock.Now

	code, r, stderr := runProbeJSON(t, clock, "--provider", "dev", "--count", "3", "--ages", "0s,10s,20s",
		"--team-id", "TEAMID1234", "--key-id", "KEY1234567", "--key", writeProbeKey(t, key), "--environment", srv.URL)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if r.Latency == nil || r.Latency.OK != 3 || r.Lifetime == nil {
		t.Fatalf("report %+v", r)
	}
	l := r.Lifetime
	if l.Environment != srv.URL || l.LongestValid != "20s" || l.RecommendedMaxAge != "10s" || len(l.Ages) != 3 {
		t.Errorf("lifetime %+v", l)
	}
	// The fake accepts any well-formed token, made-up ones included.
	if l.Answers["bad"].Outcome != probe.OutcomeValid || l.ReuseAccepted == nil || !*l.ReuseAccepted {
		t.Errorf("answers %+v", l.Answers)
	}

	// Apple refusing the key fails the command with a hint.
	srv.Respond(func(devicechecktest.Request) *devicechecktest.Response {
		return &devicechecktest.Response{Status: http.StatusForbidden, Body: "Forbidden"}
	})
	code, out, stderr := runProbeCLI(t, clock, "--provider", "dev", "--count", "0", "--ages", "0s",
		"--team-id", "TEAMID1234", "--key-id", "KEY1234567", "--key", writeProbeKey(t, key), "--environment", srv.URL)
	if code != 1 || !strings.Contains(stderr, "refused the key") || !strings.Contains(stderr, "attestd: hint:") || !strings.Contains(out, `HTTP 403 "Forbidden"`) {
		t.Errorf("exit %d\nstdout %s\nstderr %s", code, out, stderr)
	}
}
