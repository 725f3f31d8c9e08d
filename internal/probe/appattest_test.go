package probe

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/provider/appattest"
	"github.com/attestd/attestd/internal/appattestsim"
	"github.com/attestd/attestd/internal/appattestsim/regtest"
)

const simAppID = "ABCDE12345.dev.attestd.probe"

func simStart(t *testing.T, appID string) func() (appattest.Service, error) {
	t.Helper()
	svc, err := appattestsim.NewService(appID, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	return func() (appattest.Service, error) { return svc, nil }
}

// TestAppAttestProbe: a key, its registration with a server that checks
// the attestation, then a cold assertion and Count warm ones.
func TestAppAttestProbe(t *testing.T) {
	t.Parallel()
	srv := regtest.New(t, simAppID)
	r, err := Run(context.Background(), Config{Count: 4, Timeout: 10 * time.Second,
		AppAttest: &AppAttestConfig{Start: simStart(t, simAppID), Register: &appattest.Client{BaseURL: srv.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	a := r.AppAttest
	if r.Provider != header.KindAppAttest || a == nil || a.Error != "" || a.Key == "" {
		t.Fatalf("report %+v", r)
	}
	if g := a.Registration; g == nil || g.Error != "" || g.Environment != "development" || g.TotalMs < g.AttestMs {
		t.Fatalf("registration %+v", g)
	}
	if l := a.Assertions; l.OK != 4 || l.ColdError != "" || l.TokenBytes == 0 || l.P99Ms < l.P50Ms {
		t.Fatalf("assertions %+v", l)
	}
	srv.Expect(t, "register", "active")
	var b strings.Builder
	r.WriteText(&b)
	for _, want := range []string{"provider aa", "App Attest: started in", "registration: ", "; development key",
		"assertions: latency: a cold call, then 4 calls (4 ok, 0 failed)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
}

// TestAppAttestProbeFailures: a start that fails and a registration the
// server refuses (another App ID) are reported, with the report.
func TestAppAttestProbeFailures(t *testing.T) {
	t.Parallel()
	srv := regtest.New(t, "OTHERTEAM1.another.app")
	for _, tc := range []struct {
		name string
		cfg  AppAttestConfig
		want string
	}{
		{"no App Attest", AppAttestConfig{Start: func() (appattest.Service, error) { return nil, provider.ErrUnsupported }},
			"App Attest: start App Attest"},
		{"registration refused", AppAttestConfig{Start: simStart(t, simAppID), Register: &appattest.Client{BaseURL: srv.URL}},
			"App Attest registration: register"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := Run(context.Background(), Config{Count: 2, Timeout: 10 * time.Second, AppAttest: &tc.cfg})
			var failed *FailedError
			if !errors.As(err, &failed) || !strings.HasPrefix(failed.Reasons[0], tc.want) || r.AppAttest == nil {
				t.Fatalf("Run = %+v, %v; want a failure %q", r, err, tc.want)
			}
		})
	}
}

func TestAppAttestProbeConfig(t *testing.T) {
	t.Parallel()
	start := func() (appattest.Service, error) { return nil, nil }
	for name, cfg := range map[string]Config{
		"no start": {Count: 1, Timeout: time.Second, AppAttest: &AppAttestConfig{}},
		"no count": {Timeout: time.Second, AppAttest: &AppAttestConfig{Start: start}},
		"lifetime": {Count: 1, Timeout: time.Second, AppAttest: &AppAttestConfig{Start: start}, Lifetime: &LifetimeConfig{Ages: []time.Duration{0}}},
	} {
		if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
}
