package gate

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attestd/attestd/verify/redisreplay"
	"github.com/attestd/attestd/verify/redisreplay/redistest"
)

// Each bad setting is a *SettingError naming its flag, and never repeats
// a password it was given.
func TestSettingsRefused(t *testing.T) {
	t.Parallel()
	a := newApple(t)
	key := Settings{TeamID: teamID, KeyID: keyID, KeyFile: a.keyFile(t), Environment: a.URL}
	with := func(f func(*Settings)) Settings { s := key; f(&s); return s }
	for _, c := range []struct {
		name    string
		s       Settings
		setting string
	}{
		{"no key", Settings{}, "key"},
		{"part of a key", Settings{TeamID: teamID, AllowDev: true}, "key"},
		{"environment", with(func(s *Settings) { s.Environment = "http://apple.example" }), "environment"},
		{"trusted proxy", with(func(s *Settings) { s.TrustedProxies = []string{"10.0.0.0/99"} }), "trusted-proxy"},
		{"client key without trusted proxies", with(func(s *Settings) { s.ClientKey = "header:X-Forwarded-For" }), "client-key"},
		{"client key", with(func(s *Settings) { s.ClientKey = "cookie" }), "client-key"},
		{"header", with(func(s *Settings) { s.Header = "X Oai" }), "header"},
		{"upstream scheme", with(func(s *Settings) { s.Upstream = "ftp://app" }), "upstream"},
		{"upstream query", with(func(s *Settings) { s.Upstream = "http://app/?x=1" }), "upstream"},
		{"upstream unparsable", with(func(s *Settings) { s.Upstream = "http://u:pw-secret@[::1" }), "upstream"},
		{"redis mode", with(func(s *Settings) { s.ReplayRedis = "redis://x"; s.RedisMode = "ring" }), "redis-mode"},
		{"redis URL", with(func(s *Settings) { s.ReplayRedis = "redis://:pw-secret@x:notaport" }), "replay-redis"},
		{"sentinel without master", with(func(s *Settings) { s.ReplayRedis = "redis://:pw-secret@x:26379"; s.RedisMode = "sentinel" }), "replay-redis"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, closeAll, err := c.s.Config(slog.New(slog.DiscardHandler))
			var se *SettingError
			if !errors.As(err, &se) || se.Setting != c.setting {
				if closeAll != nil {
					closeAll()
				}
				t.Fatalf("Config = %v, want a *SettingError for %s", err, c.setting)
			}
			if strings.Contains(err.Error(), "pw-secret") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
	if _, _, err := (Settings{}).Config(slog.New(slog.DiscardHandler)); !errors.Is(err, ErrNoKey) {
		t.Errorf("no key: %v, want ErrNoKey", err)
	}
	missing := with(func(s *Settings) { s.KeyFile = filepath.Join(t.TempDir(), "none.p8") })
	if _, _, err := missing.Config(slog.New(slog.DiscardHandler)); err == nil || errors.As(err, new(*SettingError)) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a key file that is not there: %v, want the file's error", err)
	}
}

// Settings make a working gate: the key, the fake Apple, the replay store
// in Redis whose health /readyz reports, verify's metrics on /metrics.
func TestSettingsMakeAGate(t *testing.T) {
	t.Parallel()
	a := newApple(t)
	srv := redistest.Start(t)
	s := Settings{TeamID: teamID, KeyID: keyID, KeyFile: a.keyFile(t), Environment: a.URL, ReplayRedis: srv.URL(),
		ClientKey: "header:X-Forwarded-For", TrustedProxies: []string{"127.0.0.1"}, MaxAge: -1, AppleRateLimit: -1}
	cfg, closeAll, err := s.Config(testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	if _, ok := cfg.Verifier.Replays.(*redisreplay.Store); !ok || cfg.Verifier.Client == nil || cfg.Verifier.MaxAge != -1 || len(cfg.Ready) != 1 {
		t.Fatalf("Config: %+v", cfg)
	}
	gw := startGate(t, cfg, false)
	att := a.valid(t)
	if got := send(t, "GET", "http://"+gw.addr+"/auth", att, nil, ""); got.status != 200 {
		t.Fatalf("valid: %d %s", got.status, got.body)
	}
	if got := send(t, "GET", "http://"+gw.addr+"/auth", att, nil, ""); got.status != 403 {
		t.Fatalf("replayed: %d %s", got.status, got.body)
	}
	if got := send(t, "GET", "http://"+gw.addr+"/readyz", "", nil, ""); got.status != 200 {
		t.Errorf("/readyz: %d %s", got.status, got.body)
	}
	metrics := send(t, "GET", "http://"+gw.addr+"/metrics", "", nil, "").body
	for _, want := range []string{`attestd_verify_checks_total{kind="dc",outcome="valid",reason="none"} 1`, `attestd_verify_apple_request_duration_seconds_count{code="200",op="validate_device_token"} 1`, "go_goroutines", "process_"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	srv.Stop()
	if got := send(t, "GET", "http://"+gw.addr+"/readyz", "", nil, ""); got.status != 503 || !strings.Contains(got.body, "replay_store") {
		t.Errorf("/readyz with Redis stopped: %d %s", got.status, got.body)
	}
	if got := send(t, "GET", "http://"+gw.addr+"/auth", a.valid(t), nil, ""); got.status != 503 || got.header.Get("Retry-After") == "" {
		t.Errorf("a check with Redis stopped: %d %s, want 503 with Retry-After", got.status, got.body)
	}
}

// A Redis that may evict replay records makes the gate not ready, and
// its checks fail closed.
func TestSettingsEvictingRedisNotReady(t *testing.T) {
	t.Parallel()
	a := newApple(t)
	srv := redistest.Start(t, "maxmemory-policy allkeys-lru")
	cfg, closeAll, err := Settings{TeamID: teamID, KeyID: keyID, KeyFile: a.keyFile(t), Environment: a.URL, ReplayRedis: srv.URL()}.Config(testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	gw := startGate(t, cfg, false)
	if got := send(t, "GET", "http://"+gw.addr+"/readyz", "", nil, ""); got.status != 503 || !strings.Contains(got.body, "allkeys-lru") {
		t.Errorf("/readyz: %d %s", got.status, got.body)
	}
	if got := send(t, "GET", "http://"+gw.addr+"/auth", a.valid(t), nil, ""); got.status != 503 {
		t.Errorf("a check: %d %s, want 503", got.status, got.body)
	}
}

// Without a key, --allow-dev runs a gate for development tokens alone;
// a DeviceCheck token is of a kind it does not accept.
func TestSettingsDevOnly(t *testing.T) {
	t.Parallel()
	cfg, closeAll, err := Settings{AllowDev: true}.Config(testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	if !cfg.Verifier.NoClient || cfg.Verifier.Client != nil || !cfg.Verifier.AllowDev {
		t.Fatalf("Verifier %+v", cfg.Verifier)
	}
	gw := startGate(t, cfg, false)
	if got := send(t, "GET", "http://"+gw.addr+"/auth", envelope(t, "dev", []byte("dev token")), nil, ""); got.status != 200 {
		t.Errorf("dev token: %d %s", got.status, got.body)
	}
	a := newApple(t)
	if got := send(t, "GET", "http://"+gw.addr+"/auth", a.valid(t), nil, ""); got.status != 403 || !strings.Contains(got.body, "kind_not_accepted") {
		t.Errorf("DeviceCheck token without a key: %d %s, want 403 kind_not_accepted", got.status, got.body)
	}
}
