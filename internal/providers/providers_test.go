package providers

import (
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"testing"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/hint"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		spec    Spec
		serving bool
		want    string // "" for no error
	}{
		{"dev", Spec{Name: "dev"}, true, ""},
		{"unknown", Spec{Name: "magic"}, true, `unknown provider "magic"`},
		{"empty name", Spec{}, true, `unknown provider ""`},
		{"App Attest flags without App Attest", Spec{Name: "dev", AppID: "T.b"}, true, "go with --provider appattest"},
		{"appattest serves with a server only", Spec{Name: "appattest"}, true, "needs --appattest-register"},
		{"appattest probes without one", Spec{Name: "appattest"}, false, ""},
		{"sim needs its App ID", Spec{Name: "appattest-sim", Register: "http://127.0.0.1:1"}, true, "needs --app-id"},
		{"plain http off loopback", Spec{Name: "appattest", Register: "http://example.com"}, true, "--appattest-register"},
		{"negative latency", Spec{Name: "dev", DevLatency: -1}, true, "--dev-latency"},
		{"negative ready", Spec{Name: "auto", Ready: -1}, true, "--appattest-ready"},
		{"auto with a server", Spec{Name: "auto", Register: "https://gate.example.com"}, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Check(tc.serving)
			var ue *UsageError
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Check = %v, want nil", err)
			case tc.want != "" && (!errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Check = %v, want a *UsageError with %q", err, tc.want)
			}
		})
	}
}

// TestNewAutoOffMac: off macOS "auto" is the development provider, after
// one warning that its tokens prove nothing.
func TestNewAutoOffMac(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "darwin" {
		t.Skip("auto is DeviceCheck on macOS")
	}
	var warnings []string
	p, err := New(Spec{Name: "auto"}, slog.New(slog.DiscardHandler), func(w string) { warnings = append(warnings, w) })
	if err != nil {
		t.Fatal(err)
	}
	defer Close(p)
	if p.Name() != header.KindDev || len(warnings) != 1 || !strings.Contains(warnings[0], "never valid in production") {
		t.Errorf("auto off macOS = %s with warnings %q", p.Name(), warnings)
	}
	_, err = New(Spec{Name: "devicecheck"}, slog.New(slog.DiscardHandler), nil)
	if h := hint.Of(err); err == nil || !strings.Contains(h, "--provider dev") {
		t.Errorf("devicecheck off macOS = %v (hint %q), want an error whose hint names --provider dev", err, h)
	}
}
