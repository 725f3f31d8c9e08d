package gate

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/provider/appattest"
	vappattest "github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/devattest"
	"github.com/attestd/attestd/verify/redisreplay/redistest"
)

// aaAppID is the App ID the App Attest tests register keys for.
const aaAppID = teamID + ".com.example.app"

// devRootFile writes the development root, for --appattest-root.
func devRootFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "development-root.pem")
	if err := os.WriteFile(path, devattest.RootPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// aaSettings are the settings of a gate for App Attest development keys
// (and development tokens), with the fake Apple's key so that any call to
// Apple would be seen.
func aaSettings(t testing.TB, a *apple) Settings {
	return Settings{TeamID: teamID, KeyID: keyID, KeyFile: a.keyFile(t), Environment: a.URL, AllowDev: true,
		Kinds: []string{"aa", "dev"}, AppIDs: []string{aaAppID}, AppAttestEnvironment: "development",
		AppAttestRoots: []string{devRootFile(t)}, AppleRateLimit: -1}
}

// device is an app with a development App Attest key.
type device struct {
	key *devattest.Key
}

// register makes a key and registers it with the server at base through
// the helper's registration client.
func register(t testing.TB, base string) *device {
	t.Helper()
	k, err := devattest.NewKey(aaAppID)
	if err != nil {
		t.Fatal(err)
	}
	d := &device{key: k}
	c := &appattest.Client{BaseURL: base}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ch, err := c.Challenge(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(ch.Bytes)
	att, err := k.Attest(h[:])
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Register(ctx, d.id(), att, ch.Text)
	if err != nil || r.Environment != "development" || r.Again {
		t.Fatalf("Register = %+v, %v", r, err)
	}
	return d
}

// id is the key id as App Attest gives it (standard base64).
func (d *device) id() string { return base64.StdEncoding.EncodeToString(d.key.ID()) }

// value returns the envelope of a fresh assertion, as the helper makes
// one for a request.
func (d *device) value(t testing.TB) string {
	t.Helper()
	nonce := make([]byte, header.NonceLen)
	rand.Read(nonce)
	g := time.UnixMilli(time.Now().UnixMilli())
	cdh := header.AppAttestClientDataHash(d.key.ID(), g, nonce)
	obj, err := d.key.Assert(cdh[:])
	if err != nil {
		t.Fatal(err)
	}
	// b and m claim another app: the gate's team and bundle headers must
	// come from the key's attested App ID instead.
	v, err := header.Encode(header.Value{Kind: header.KindAppAttest, Token: obj, KeyID: d.key.ID(), Nonce: nonce,
		GeneratedAt: g, BundleID: "com.example.other", TeamID: "OTHER12345"})
	if err != nil {
		t.Fatal(err)
	}
	return `{"v":1,"s":0,"t":"` + v + `"}`
}

// The gate in forward-auth mode with App Attest in memory: a key
// registers at /appattest/ with no attestation header; its assertions
// pass with the key id in X-Attestd-Key-Id, once each, in any order, and
// without a call to Apple; a development token still passes under
// --allow-dev, with the key id header present and empty.
func TestAppAttestForwardAuth(t *testing.T) {
	t.Parallel()
	a := newApple(t)
	cfg, closeAll, err := aaSettings(t, a).Config(testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	if _, ok := cfg.Verifier.Keys.(*vappattest.MemoryKeyStore); !ok || cfg.Mount[RegistrationPath] == nil {
		t.Fatalf("Config: keys %T, mounts %v", cfg.Verifier.Keys, cfg.Mount)
	}
	gw := startGate(t, cfg, false)
	base := "http://" + gw.addr
	d := register(t, base)
	v1, v2, v3 := d.value(t), d.value(t), d.value(t)
	for _, c := range []struct {
		name, att string
		status    int
	}{
		{"valid", v1, 200},
		{"the same header again", v1, 403},
		{"a later one", v3, 200},
		{"an earlier one, after it", v2, 200},
		{"the earlier one again", v2, 403},
	} {
		got := send(t, "GET", base+"/auth", c.att, nil, "")
		if got.status != c.status {
			t.Fatalf("%s: %d %s", c.name, got.status, got.body)
		}
		if c.status == 403 && !strings.Contains(got.body, `"reason":"replay"`) {
			t.Errorf("%s: %s, want reason replay", c.name, got.body)
		}
		if c.status != 200 {
			continue
		}
		if k, id := got.header.Get(HeaderKind), got.header.Get(HeaderKeyID); k != "aa" || id != base64.RawURLEncoding.EncodeToString(d.key.ID()) {
			t.Errorf("%s: kind %q, key id %q", c.name, k, id)
		}
		if team, bundle := got.header.Get(HeaderTeam), got.header.Get(HeaderBundle); team != teamID || bundle != "com.example.app" {
			t.Errorf("%s: team %q, bundle %q: want the attested App ID's, not the header's claims", c.name, team, bundle)
		}
	}
	// The fake Apple is no Apple's own server: the Verifier asks it about
	// development tokens too, and it accepts what it issued.
	dev := send(t, "GET", base+"/auth", envelope(t, header.KindDev, a.IssueToken()), nil, "")
	if dev.status != 200 || dev.header.Get(HeaderKind) != "dev" || len(dev.header.Values(HeaderKeyID)) != 1 || dev.header.Get(HeaderKeyID) != "" {
		t.Errorf("dev token: %d %v", dev.status, dev.header)
	}
	if got := send(t, "GET", base+"/auth", a.valid(t), nil, ""); got.status != 403 || !strings.Contains(got.body, "kind_not_accepted") {
		t.Errorf("a DeviceCheck token to a gate for aa and dev: %d %s", got.status, got.body)
	}
	if n := len(a.Requests()); n != 1 {
		t.Errorf("Apple was asked %d times, want once (the dev token, the fake being no Apple)", n)
	}
	if got := send(t, "GET", base+"/appattest/keys/"+base64.RawURLEncoding.EncodeToString(d.key.ID()), "", nil, ""); got.status != 200 || !strings.Contains(got.body, `"active"`) {
		t.Errorf("key status: %d %s", got.status, got.body)
	}
}

// In proxy mode the registration paths are the gate's: answered without
// an attestation header and never forwarded; everything else is checked
// and forwarded with the key id.
func TestAppAttestProxyMode(t *testing.T) {
	t.Parallel()
	a, up := newApple(t), startUpstream(t)
	s := aaSettings(t, a)
	s.Upstream = up.URL
	cfg, closeAll, err := s.Config(testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	gw := startGate(t, cfg, false)
	base := "http://" + gw.addr
	d := register(t, base)
	if got := send(t, "POST", base+"/appattest/nothing-here", "", nil, "{}"); got.status != 404 || up.reached() != 0 {
		t.Errorf("an unknown registration path: %d %s; upstream reached %d times", got.status, got.body, up.reached())
	}
	got := send(t, "GET", base+"/app", d.value(t), nil, "")
	want := `x-attestd-key-id="` + base64.RawURLEncoding.EncodeToString(d.key.ID()) + `"`
	if got.status != 200 || !strings.Contains(got.body, `x-attestd-kind="aa"`) || !strings.Contains(got.body, want) {
		t.Errorf("an App Attest request: %d %s", got.status, got.body)
	}
	if got := send(t, "GET", base+"/app", "", nil, ""); got.status != 401 || up.reached() != 1 {
		t.Errorf("no header: %d, upstream reached %d times", got.status, up.reached())
	}
}

// A gate that accepts App Attest alone needs no DeviceCheck key, asks
// Apple nothing, and refuses other kinds outright.
func TestAppAttestOnlyNeedsNoKey(t *testing.T) {
	t.Parallel()
	a := newApple(t)
	s := Settings{AppIDs: []string{aaAppID}, AppAttestEnvironment: "both", AppAttestRoots: []string{devRootFile(t)}, AllowDev: true,
		Kinds: []string{"aa"}}
	cfg, closeAll, err := s.Config(testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	if cfg.Verifier.Client != nil || !slices.Equal(cfg.Verifier.Kinds, []string{"aa"}) {
		t.Fatalf("Verifier %+v", cfg.Verifier)
	}
	gw := startGate(t, cfg, false)
	base := "http://" + gw.addr
	d := register(t, base)
	if got := send(t, "GET", base+"/auth", d.value(t), nil, ""); got.status != 200 {
		t.Errorf("App Attest: %d %s", got.status, got.body)
	}
	for _, att := range []string{a.valid(t), envelope(t, header.KindDev, []byte("dev"))} {
		if got := send(t, "GET", base+"/auth", att, nil, ""); got.status != 403 || !strings.Contains(got.body, "kind_not_accepted") {
			t.Errorf("another kind: %d %s", got.status, got.body)
		}
	}
	if n := len(a.Requests()); n != 0 {
		t.Errorf("Apple was asked %d times", n)
	}
}

// A root other than Apple's needs --allow-dev: its keys would pass only
// with it, and the development root's private key is public. And a gate
// without --allow-dev refuses a development key that another gate on the
// same Redis registered.
func TestAppAttestDevKeyNeedsAllowDev(t *testing.T) {
	t.Parallel()
	s := Settings{AppIDs: []string{aaAppID}, AppAttestEnvironment: "development", AppAttestRoots: []string{string(devattest.RootPEM())}}
	var bad *SettingError
	if _, _, err := s.Config(testLogger(t)); !errors.As(err, &bad) || bad.Setting != "appattest-root" || !strings.Contains(err.Error(), "--allow-dev") {
		t.Fatalf("--appattest-root without --allow-dev: %v, want a SettingError for appattest-root", err)
	}

	srv := redistest.Start(t)
	dev := aaSettings(t, newApple(t))
	dev.ReplayRedis = srv.URL()
	strict := Settings{AppIDs: []string{aaAppID}, AppAttestEnvironment: "development", ReplayRedis: srv.URL()}
	var gates []*running
	for _, s := range []Settings{dev, strict} {
		cfg, closeAll, err := s.Config(testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(closeAll)
		gates = append(gates, startGate(t, cfg, false))
	}
	d := register(t, "http://"+gates[0].addr)
	if got := send(t, "GET", "http://"+gates[1].addr+"/auth", d.value(t), nil, ""); got.status != 403 || !strings.Contains(got.body, "dev_key") {
		t.Errorf("a development key at a gate without --allow-dev: %d %s", got.status, got.body)
	}
	if got := send(t, "GET", "http://"+gates[0].addr+"/auth", d.value(t), nil, ""); got.status != 200 {
		t.Errorf("the same key at the gate with --allow-dev: %d %s", got.status, got.body)
	}
}

// With Redis, two gates share keys, counters and challenges: a key
// registered through one is checked by the other, a header admitted by
// one is a replay at the other, a challenge issued by one is taken by the
// other; /readyz checks the key store too.
func TestAppAttestTwoGatesOnRedis(t *testing.T) {
	t.Parallel()
	a := newApple(t)
	srv := redistest.Start(t)
	gate := func() *running {
		s := aaSettings(t, a)
		s.ReplayRedis = srv.URL()
		cfg, closeAll, err := s.Config(testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(closeAll)
		if names := readyNames(cfg.Ready); !slices.Equal(names, []string{"replay_store", "appattest_key_store"}) {
			t.Fatalf("ready checks %v", names)
		}
		return startGate(t, cfg, false)
	}
	ga, gb := gate(), gate()
	d := register(t, "http://"+ga.addr)
	v1, v2 := d.value(t), d.value(t)
	for _, c := range []struct {
		gw     *running
		att    string
		status int
	}{{gb, v2, 200}, {ga, v1, 200}, {ga, v2, 403}, {gb, v1, 403}} {
		if got := send(t, "GET", "http://"+c.gw.addr+"/auth", c.att, nil, ""); got.status != c.status {
			t.Fatalf("%d %s, want %d", got.status, got.body, c.status)
		}
	}
	if got := send(t, "GET", "http://"+gb.addr+"/readyz", "", nil, ""); got.status != 200 {
		t.Errorf("/readyz: %d %s", got.status, got.body)
	}
	// A challenge from one gate registers through the other.
	k, err := devattest.NewKey(aaAppID)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ch, err := (&appattest.Client{BaseURL: "http://" + ga.addr}).Challenge(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(ch.Bytes)
	att, err := k.Attest(h[:])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&appattest.Client{BaseURL: "http://" + gb.addr}).Register(ctx, base64.StdEncoding.EncodeToString(k.ID()), att, ch.Text); err != nil {
		t.Errorf("a challenge of gate A at gate B: %v", err)
	}
	srv.Stop()
	if got := send(t, "GET", "http://"+gb.addr+"/readyz", "", nil, ""); got.status != 503 {
		t.Errorf("/readyz with Redis stopped: %d %s", got.status, got.body)
	}
	if got := send(t, "GET", "http://"+gb.addr+"/auth", d.value(t), nil, ""); got.status != 503 || !strings.Contains(got.body, "key_store") {
		t.Errorf("a check with Redis stopped: %d %s", got.status, got.body)
	}
}

func readyNames(checks []ReadyCheck) []string {
	var names []string
	for _, c := range checks {
		names = append(names, c.Name)
	}
	return names
}

// keyStore is a KeyStore whose Get answers as told.
type keyStore struct {
	vappattest.KeyStore
	rec *vappattest.KeyRecord
	err error
}

func (k keyStore) Get(context.Context, []byte) (*vappattest.KeyRecord, error) { return k.rec, k.err }

// The key store's readiness: "unknown" is the healthy answer to the
// all-zero key id; anything else is not.
func TestKeyStoreHealth(t *testing.T) {
	t.Parallel()
	down := errors.New("connection refused")
	for _, c := range []struct {
		store keyStore
		ok    bool
	}{
		{keyStore{err: fmt.Errorf("redis: %w", vappattest.ErrUnknownKey)}, true},
		{keyStore{err: down}, false},
		{keyStore{rec: &vappattest.KeyRecord{}}, false},
	} {
		if err := keyStoreHealth(context.Background(), c.store); (err == nil) != c.ok {
			t.Errorf("%+v: %v", c.store, err)
		}
	}
}

// The kinds a gate accepts, from what is set up and --kinds.
func TestAcceptedKinds(t *testing.T) {
	t.Parallel()
	apps := []string{aaAppID}
	for _, c := range []struct {
		name    string
		s       Settings
		hasKey  bool
		want    string // the kinds, or the setting refused
		refused bool
	}{
		{"the key alone", Settings{}, true, "dc", false},
		{"App IDs alone", Settings{AppIDs: apps}, false, "aa", false},
		{"everything", Settings{AppIDs: apps, AllowDev: true}, true, "aa,dc,dev", false},
		{"allow-dev alone", Settings{AllowDev: true}, false, "dev", false},
		{"nothing", Settings{}, false, "key", true},
		{"narrowed", Settings{AppIDs: apps, Kinds: []string{"aa"}}, true, "aa", false},
		{"spaces, repeats and empties", Settings{AppIDs: apps, AllowDev: true, Kinds: []string{" dev", "aa", "", "dev"}}, false, "dev,aa", false},
		{"empty list", Settings{Kinds: []string{""}}, true, "dc", false},
		{"unknown", Settings{Kinds: []string{"dc", "app-attest"}}, true, "kinds", true},
		{"dev without allow-dev", Settings{Kinds: []string{"dev"}}, true, "kinds", true},
		{"aa without App IDs", Settings{Kinds: []string{"aa"}}, true, "app-id", true},
		{"dc without the key", Settings{AppIDs: apps, Kinds: []string{"aa", "dc"}}, false, "key", true},
		{"App IDs without aa", Settings{AppIDs: apps, Kinds: []string{"dc"}}, true, "app-id", true},
		{"a root without aa", Settings{AppAttestRoots: []string{"x.pem"}}, true, "appattest-root", true},
	} {
		got, err := c.s.acceptedKinds(c.hasKey)
		var se *SettingError
		switch {
		case c.refused && (!errors.As(err, &se) || se.Setting != c.want):
			t.Errorf("%s: %v, %v; want a *SettingError for %s", c.name, got, err, c.want)
		case !c.refused && (err != nil || strings.Join(got, ",") != c.want):
			t.Errorf("%s: %v, %v; want %s", c.name, got, err, c.want)
		}
	}
}

// Bad App Attest settings are *SettingError values naming the flag.
func TestAppAttestSettingsRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o644)
	for _, c := range []struct {
		name, setting string
		s             Settings
	}{
		{"environment", "appattest-environment", Settings{AppIDs: []string{aaAppID}, AppAttestEnvironment: "staging"}},
		{"missing root", "appattest-root", Settings{AppIDs: []string{aaAppID}, AppAttestRoots: []string{filepath.Join(dir, "none.pem")}}},
		{"not a root", "appattest-root", Settings{AppIDs: []string{aaAppID}, AppAttestRoots: []string{notPEM}}},
		{"bad PEM text", "appattest-root", Settings{AppIDs: []string{aaAppID}, AppAttestRoots: []string{"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}}},
	} {
		_, closeAll, err := c.s.Config(slog.New(slog.DiscardHandler))
		var se *SettingError
		if !errors.As(err, &se) || se.Setting != c.setting {
			if closeAll != nil {
				closeAll()
			}
			t.Errorf("%s: %v, want a *SettingError for %s", c.name, err, c.setting)
		}
	}
}

// Roots are named as attestd appattest --root names them; Apple's own
// adds nothing.
func TestAppAttestRoots(t *testing.T) {
	t.Parallel()
	apple := vappattest.AppleRoot()
	applePEM := filepath.Join(t.TempDir(), "apple.pem")
	os.WriteFile(applePEM, pemOf(apple.Certificate.Raw), 0o644)
	roots, err := appAttestRoots([]string{devRootFile(t), string(devattest.RootPEM()), applePEM})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range roots {
		names = append(names, r.Name)
	}
	if !slices.Equal(names, []string{"apple", "development", "development"}) {
		t.Errorf("roots %v", names)
	}
}

func pemOf(der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}) }
