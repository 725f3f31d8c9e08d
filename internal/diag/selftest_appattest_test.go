package diag

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/darwin"
)

// lockedKeychain fails every call as a locked login Keychain does.
type lockedKeychain struct{}

var errLocked = &darwin.KeychainError{Service: "s", Account: darwin.KeychainAccount,
	Err: &darwin.OSStatusError{Op: "SecItemAdd", Status: -25308, Msg: "User interaction is not allowed."}}

func (lockedKeychain) Get(context.Context) (string, error) { return "", errLocked }
func (lockedKeychain) Set(context.Context, string) error   { return errLocked }
func (lockedKeychain) Delete(context.Context) error        { return errLocked }

func TestSelftestAppAttest(t *testing.T) {
	t.Parallel()
	refused := darwin.NewAppAttestError(darwin.OpGenerateAssertion, darwin.DCErrorDomain, darwin.DCErrorInvalidInput, "no")
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	tests := []struct {
		name     string
		change   func(m *selftestMac, e *fakeEnv)
		want     map[string]Status // the App Attest checks; unlisted ones pass
		contains map[string]string
	}{
		{name: "everything works", contains: map[string]string{"appattest-assertion": "21-byte assertion"}},
		{name: "isSupported false", change: func(m *selftestMac, _ *fakeEnv) { m.aaSupported = func() (bool, error) { return false, nil } },
			want:     map[string]Status{"appattest-supported": Skipped, "appattest-key": Skipped, "appattest-assertion": Skipped},
			contains: map[string]string{"appattest-supported": "attestd serves DeviceCheck tokens"}},
		{name: "no DCAppAttestService", change: func(m *selftestMac, _ *fakeEnv) {
			m.aaSupported = func() (bool, error) {
				return false, &provider.Error{Reason: provider.ReasonUnsupported, Msg: "no class"}
			}
		}, want: map[string]Status{"appattest-supported": Skipped, "appattest-key": Skipped, "appattest-assertion": Skipped}},
		{name: "isSupported hangs", change: func(m *selftestMac, _ *fakeEnv) {
			m.aaSupported = func() (bool, error) { <-release; return true, nil }
		}, want: map[string]Status{"appattest-supported": Fail, "appattest-key": Skipped, "appattest-assertion": Skipped}},
		{name: "locked Keychain", change: func(_ *selftestMac, e *fakeEnv) {
			e.newKeychain = func(darwin.KeychainOptions) (darwin.KeyStore, error) { return lockedKeychain{}, nil }
		}, want: map[string]Status{"appattest-keychain": Fail}, contains: map[string]string{"appattest-keychain": "User interaction is not allowed"}},
		{name: "team-signed assertion refused", change: func(m *selftestMac, _ *fakeEnv) {
			m.appAttest.answer = func() ([]byte, error) { return nil, refused }
		}, want: map[string]Status{"appattest-assertion": Fail}, contains: map[string]string{"appattest-assertion": "invalidInput"}},
		{name: "unsigned assertion refused cleanly", change: func(m *selftestMac, _ *fakeEnv) {
			m.sig = darwin.Signature{}
			m.answer = func() ([]byte, error) { return nil, darwin.NewDCError(darwin.DCErrorDomain, 3, "no") }
			m.appAttest.answer = func() ([]byte, error) { return nil, refused }
		}, contains: map[string]string{"appattest-assertion": "refused this unsigned binary cleanly"}},
		{name: "assertion hangs", change: func(m *selftestMac, _ *fakeEnv) {
			m.appAttest.answer = func() ([]byte, error) { <-release; return nil, errors.New("late") }
		}, want: map[string]Status{"appattest-assertion": Fail}, contains: map[string]string{"appattest-assertion": "did not call its completion handler"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := newSelftestMac()
			env := m.env(t)
			if tt.change != nil {
				tt.change(m, env)
			}
			r := Selftest(context.Background(), env, SelftestConfig{Timeout: 50 * time.Millisecond, TempDir: t.TempDir()})
			for _, name := range []string{"appattest-supported", "appattest-keychain", "appattest-key", "appattest-assertion"} {
				want := Pass
				if w, ok := tt.want[name]; ok {
					want = w
				}
				c := mustFind(t, r, name)
				if c.Status != want {
					t.Errorf("%s = %q, want %q (%s)", name, c.Status, want, c.Detail)
				}
				if s, ok := tt.contains[name]; ok && !strings.Contains(c.Detail, s) {
					t.Errorf("%s: %q lacks %q", name, c.Detail, s)
				}
			}
		})
	}
}
