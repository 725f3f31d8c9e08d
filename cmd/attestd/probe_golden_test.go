package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/attestd/attestd/internal/probe/probetest"
	"github.com/attestd/attestd/verify/devicechecktest"
)

// TestProbeGolden pins what "attestd probe" prints, text and JSON, byte
// for byte, against the fake Apple with the dev provider and the step
// clock (so every latency is 0 and every measured age exact): moving the
// probe engine must not change what a user reads. The parts that differ
// from run to run (the fake's URL, the platform, the fingerprints of
// random tokens) are replaced by placeholders. After an intended change,
// run go test ./cmd/attestd -run TestProbeGolden -update and review the
// diff.
func TestProbeGolden(t *testing.T) {
	t.Parallel()
	// A search through every kind of answer: the fresh token valid, its
	// reuse refused, the made-up token refused, 10s unavailable (503),
	// 20s a 200 with a body (both inconclusive), 40s valid, 1m20s
	// refused; 2m40s is never asked.
	search := func(srv *devicechecktest.Server) []string {
		srv.RejectReuse(true)
		srv.Respond(func(devicechecktest.Request) *devicechecktest.Response {
			switch len(srv.Requests()) {
			case 3, 7: // the made-up token; 1m20s
				return &devicechecktest.Response{Status: http.StatusBadRequest, Body: devicechecktest.BodyBadDeviceToken}
			case 4:
				return &devicechecktest.Response{Status: http.StatusServiceUnavailable, Body: "Service Unavailable"}
			case 5:
				return &devicechecktest.Response{Status: http.StatusOK, Body: `{"status":"ok"}`}
			}
			return nil
		})
		return []string{"--count", "3", "--ages", "0s,10s,20s,40s,1m20s,2m40s"}
	}
	// Apple refuses the key: the command fails with a hint.
	keyRefused := func(srv *devicechecktest.Server) []string {
		srv.Respond(func(devicechecktest.Request) *devicechecktest.Response {
			return &devicechecktest.Response{Status: http.StatusForbidden, Body: "Forbidden"}
		})
		return []string{"--count", "0", "--ages", "0s"}
	}
	// No key: the latency alone.
	latencyOnly := func(*devicechecktest.Server) []string { return []string{"--count", "2"} }
	for _, tc := range []struct {
		name  string
		setup func(*devicechecktest.Server) []string
		json  bool
		noKey bool
	}{
		{"search", search, false, false},
		{"search-json", search, true, false},
		{"key-refused", keyRefused, false, false},
		{"key-refused-json", keyRefused, true, false},
		{"latency", latencyOnly, false, true},
		{"latency-json", latencyOnly, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			key := mustKey(t)
			srv := devicechecktest.NewServer(&key.PublicKey, "TEAMID1234", "KEY1234567")
			t.Cleanup(srv.Close)
			clock := probetest.NewStepClock()
			srv.Now = clock.Now

			args := append([]string{"probe", "--provider", "dev"}, tc.setup(srv)...)
			if tc.json {
				args = append(args, "--json")
			}
			if !tc.noKey {
				args = append(args, "--team-id", "TEAMID1234", "--key-id", "KEY1234567", "--key", "KEYFILE", "--environment", "APPLE")
			}
			run := make([]string, len(args))
			for i, a := range args {
				run[i] = strings.NewReplacer("KEYFILE", writeProbeKey(t, key), "APPLE", srv.URL).Replace(a)
			}
			code, out, stderr := runProbeCLI(t, clock, run[1:]...)
			got := fmt.Sprintf("$ attestd %s\nexit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(args, " "), code, out, stderr)
			got = normalizeProbeOutput(got, srv.URL)
			checkGolden(t, filepath.Join("testdata", "probe", tc.name+".txt"), got)
		})
	}
}

var fingerprintJSON = regexp.MustCompile(`"fingerprint": "[0-9a-f]{12}"`)

// normalizeProbeOutput replaces what differs from run to run.
func normalizeProbeOutput(s, appleURL string) string {
	s = strings.ReplaceAll(s, appleURL, "APPLE")
	s = strings.ReplaceAll(s, runtime.GOOS+"/"+runtime.GOARCH, "GOOS/GOARCH")
	return fingerprintJSON.ReplaceAllString(s, `"fingerprint": "FINGERPRINT"`)
}

// checkGolden compares got with the file at path, or rewrites the file
// with -update.
func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output changed; want %s:\n%s\ngot:\n%s", path, want, got)
	}
}
