package plists

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestBundleVersion(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"v1.2.3", "1.2.3"},
		{"v1.2.3-4-gabcdef0-dirty", "1.2.3"},
		{"1.2", "1.2"},
		{"v2", "2"},
		{"v01.002.3", "1.2.3"},
		{"0.9.1+meta", "0.9.1"},
		{"3fcb1b9", "0.0.0"},       // bare hash
		{"1234567", "0.0.0"},       // all-digit hash
		{"3fcb1b9-dirty", "0.0.0"}, // dirty hash
		{"dev", "0.0.0"},
		{"", "0.0.0"},
		{"v1.2.3.4", "0.0.0"},
		{"v99999999999.1", "0.0.0"},
	} {
		if got := BundleVersion(tc.in); got != tc.want {
			t.Errorf("BundleVersion(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCheckBundleID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"dev.attestd.helper", true},
		{"com.example.Host-App.attestd", true},
		{"", false},
		{"attestd", false},
		{"com..example", false},
		{".com.example", false},
		{"com.example_app", false},
		{"com.example app", false},
	} {
		if err := CheckBundleID(tc.id); (err == nil) != tc.ok {
			t.Errorf("CheckBundleID(%q) = %v, want ok=%v", tc.id, err, tc.ok)
		}
	}
}

func TestInfoPlistRoundTrip(t *testing.T) {
	info, err := NewInfoPlist("com.example.Host.attestd", "Attestd", "attestd", "v1.4.0")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Dict(b)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"CFBundleDevelopmentRegion":     "en",
		"CFBundleExecutable":            "attestd",
		"CFBundleIdentifier":            "com.example.Host.attestd",
		"CFBundleInfoDictionaryVersion": "6.0",
		"CFBundleName":                  "Attestd",
		"CFBundlePackageType":           "APPL",
		"CFBundleShortVersionString":    "1.4.0",
		"CFBundleVersion":               "1.4.0",
		"LSMinimumSystemVersion":        "12.0",
		"LSUIElement":                   true,
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("Info.plist decodes to\n%#v\nwant\n%#v", m, want)
	}
	if _, err := NewInfoPlist("bad id", "Attestd", "attestd", "v1"); err == nil {
		t.Error("NewInfoPlist accepted a bad bundle id")
	}
}

func TestNewLaunchAgent(t *testing.T) {
	const bp = "Contents/Helpers/Attestd.app/Contents/MacOS/attestd"
	for _, tc := range []struct {
		name    string
		cfg     AgentConfig
		want    map[string]any // decoded plist; nil when an error is expected
		wantErr string
	}{
		{
			name: "host app, launchd-chosen socket in the host's own variable",
			cfg:  AgentConfig{Label: "com.example.attestd", BundleProgram: bp},
			want: map[string]any{
				"Label":         "com.example.attestd",
				"BundleProgram": bp,
				"ProgramArguments": []any{"attestd", "serve", "--launchd", "Listeners", "--provider", "devicecheck",
					"--log-file", "~/Library/Logs/com.example.attestd.log"},
				"Sockets":                map[string]any{"Listeners": map[string]any{"SockType": "stream", "SecureSocketWithKey": "ATTESTD_SOCKET_com_example_attestd"}},
				"LimitLoadToSessionType": "Aqua",
				"ProcessType":            "Interactive",
			},
		},
		{
			name: "host app, own key, peer requirement, no log",
			cfg: AgentConfig{Label: "com.example.attestd", BundleProgram: bp, SocketKey: "EXAMPLE_ATTESTD",
				PeerRequirement: TeamPeerRequirement("ABCDE12345"), LogFile: "-"},
			want: map[string]any{
				"Label":         "com.example.attestd",
				"BundleProgram": bp,
				"ProgramArguments": []any{"attestd", "serve", "--launchd", "Listeners", "--provider", "devicecheck",
					"--peer-requirement", `anchor apple generic and certificate leaf[subject.OU] = "ABCDE12345"`},
				"Sockets":                map[string]any{"Listeners": map[string]any{"SockType": "stream", "SecureSocketWithKey": "EXAMPLE_ATTESTD"}},
				"LimitLoadToSessionType": "Aqua",
				"ProcessType":            "Interactive",
			},
		},
		{
			name: "development install, fixed socket",
			cfg: AgentConfig{Program: "/Applications/Host.app/Contents/Helpers/Attestd.app/Contents/MacOS/attestd",
				SocketPath: "/Users/me/Library/Application Support/attestd/attestd.sock", Provider: "dev",
				AssociatedBundleIDs: []string{"dev.attestd.helper"}},
			want: map[string]any{
				"Label":   DefaultLabel,
				"Program": "/Applications/Host.app/Contents/Helpers/Attestd.app/Contents/MacOS/attestd",
				"ProgramArguments": []any{"/Applications/Host.app/Contents/Helpers/Attestd.app/Contents/MacOS/attestd",
					"serve", "--launchd", "Listeners", "--provider", "dev", "--log-file", "~/Library/Logs/dev.attestd.agent.log"},
				"Sockets": map[string]any{"Listeners": map[string]any{"SockType": "stream",
					"SockPathName": "/Users/me/Library/Application Support/attestd/attestd.sock", "SockPathMode": uint64(384)}},
				"LimitLoadToSessionType":      "Aqua",
				"ProcessType":                 "Interactive",
				"AssociatedBundleIdentifiers": []any{"dev.attestd.helper"},
			},
		},
		{
			name: "host app, App Attest with a registration URL",
			cfg: AgentConfig{Label: "com.example.attestd", BundleProgram: bp, Provider: ProviderAuto,
				AppAttestRegister: "https://gate.example.com/attestd"},
			want: map[string]any{
				"Label":         "com.example.attestd",
				"BundleProgram": bp,
				"ProgramArguments": []any{"attestd", "serve", "--launchd", "Listeners", "--provider", "auto",
					"--appattest-register", "https://gate.example.com/attestd", "--log-file", "~/Library/Logs/com.example.attestd.log"},
				"Sockets":                map[string]any{"Listeners": map[string]any{"SockType": "stream", "SecureSocketWithKey": "ATTESTD_SOCKET_com_example_attestd"}},
				"LimitLoadToSessionType": "Aqua",
				"ProcessType":            "Interactive",
			},
		},
		{name: "unknown provider", cfg: AgentConfig{BundleProgram: bp, Provider: "appatest"}, wantErr: "unknown provider"},
		{name: "registration URL for DeviceCheck", cfg: AgentConfig{BundleProgram: bp, AppAttestRegister: "https://gate.example.com"}, wantErr: "takes no registration URL"},
		{name: "registration URL in the clear", cfg: AgentConfig{BundleProgram: bp, Provider: ProviderAppAttest, AppAttestRegister: "http://gate.example.com"}, wantErr: "plain http"},
		{name: "neither program", cfg: AgentConfig{}, wantErr: "no Program"},
		{name: "both programs", cfg: AgentConfig{Program: "/a", BundleProgram: "b"}, wantErr: "not both"},
		{name: "relative Program", cfg: AgentConfig{Program: "attestd"}, wantErr: "not an absolute"},
		{name: "absolute BundleProgram", cfg: AgentConfig{BundleProgram: "/" + bp}, wantErr: "relative"},
		{name: "escaping BundleProgram", cfg: AgentConfig{BundleProgram: "../x"}, wantErr: "relative"},
		{name: "relative socket", cfg: AgentConfig{BundleProgram: bp, SocketPath: "a.sock"}, wantErr: "not absolute"},
		{name: "bad label", cfg: AgentConfig{BundleProgram: bp, Label: "a/b"}, wantErr: "label"},
		{name: "label without a key", cfg: AgentConfig{BundleProgram: bp, Label: "com.my_app.attestd"}, wantErr: "SOCKET_KEY"},
		{name: "the shared key", cfg: AgentConfig{BundleProgram: bp, SocketKey: "ATTESTD_SOCKET"}, wantErr: "shared manual override"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewLaunchAgent(tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := Marshal(a)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Dict(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m, tc.want) {
				t.Errorf("plist decodes to\n%#v\nwant\n%#v\n%s", m, tc.want, b)
			}
			if strings.Contains(string(b), "KeepAlive") || strings.Contains(string(b), "RunAtLoad") {
				t.Errorf("plist has KeepAlive or RunAtLoad:\n%s", b)
			}
		})
	}
}

// TestTwoHostsCannotCollide is the first item in one table: two
// hosts' agents, built from nothing but their labels and team, publish
// their sockets under different variables and each admits only its team.
func TestTwoHostsCannotCollide(t *testing.T) {
	const bp = "Contents/Helpers/Attestd.app/Contents/MacOS/attestd"
	seen := map[string]string{}
	for _, h := range []struct{ label, team string }{
		{"com.example.Host.attestd", "ABCDE12345"},
		{"org.other.App.attestd", "ZYXWV98765"},
		{DefaultLabel, ""},
	} {
		a, err := NewLaunchAgent(AgentConfig{Label: h.label, BundleProgram: bp, PeerRequirement: PeerRequirement("", h.team)})
		if err != nil {
			t.Fatal(err)
		}
		key := a.Sockets[DefaultSocketName].SecureSocketWithKey
		if other, dup := seen[key]; dup {
			t.Errorf("%s and %s share the socket key %s", other, h.label, key)
		}
		seen[key] = h.label
		req, hasReq := FlagValue(a.ProgramArguments, "peer-requirement")
		switch {
		case h.team == "" && hasReq:
			t.Errorf("%s: peer requirement %q without a team", h.label, req)
		case h.team != "" && (!hasReq || !strings.Contains(req, `"`+h.team+`"`)):
			t.Errorf("%s: peer requirement %q, want one naming team %s", h.label, req, h.team)
		}
	}
}

func TestPeerRequirement(t *testing.T) {
	for _, tc := range []struct{ value, team, want string }{
		{"", "ABCDE12345", `anchor apple generic and certificate leaf[subject.OU] = "ABCDE12345"`},
		{"", "", ""},
		{"none", "ABCDE12345", ""},
		{`identifier "com.example.Host"`, "ABCDE12345", `identifier "com.example.Host"`},
	} {
		if got := PeerRequirement(tc.value, tc.team); got != tc.want {
			t.Errorf("PeerRequirement(%q, %q) = %q, want %q", tc.value, tc.team, got, tc.want)
		}
	}
}

func TestLaunchdSocketName(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		name string
		ok   bool
	}{
		{[]string{"attestd", "serve", "--launchd", "Listeners"}, "Listeners", true},
		{[]string{"attestd", "serve", "-launchd=Sock"}, "Sock", true},
		{[]string{"attestd", "serve", "--provider", "dev", "--launchd", "X"}, "X", true},
		{[]string{"attestd", "serve", "--launchd"}, "", false},
		{[]string{"attestd", "serve", "--launchd="}, "", false},
		{[]string{"attestd", "serve"}, "", false},
		{[]string{"attestd", "serve", "--", "--launchd", "X"}, "", false},
		{[]string{"serve"}, "", false},
		{nil, "", false},
	} {
		name, ok := LaunchdSocketName(tc.argv)
		if name != tc.name || ok != tc.ok {
			t.Errorf("LaunchdSocketName(%q) = %q, %v; want %q, %v", tc.argv, name, ok, tc.name, tc.ok)
		}
	}
}

func TestEntitlements(t *testing.T) {
	for _, tc := range []struct {
		name     string
		xml      string
		parseErr bool
		problems []string
	}{
		{name: "empty", xml: plistXML(``)},
		{name: "profile keys", xml: plistXML(`<key>com.apple.application-identifier</key><string>T.b</string>`)},
		{name: "get-task-allow", xml: plistXML(`<key>com.apple.security.get-task-allow</key><true/>`), problems: []string{"get-task-allow"}},
		{name: "get-task-allow false", xml: plistXML(`<key>com.apple.security.get-task-allow</key><false/>`), problems: []string{"get-task-allow"}},
		{name: "false key", xml: plistXML(`<key>com.apple.security.cs.allow-jit</key><false/>`), problems: []string{"allow-jit is false"}},
		{name: "not XML", xml: "bplist00\xd0\x08\x00\x00\x00\x00\x00\x00\x01\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x09", parseErr: true},
		{name: "array root", xml: `<?xml version="1.0"?><plist version="1.0"><array/></plist>`, parseErr: true},
		{name: "garbage", xml: "<plist", parseErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := ParseEntitlements([]byte(tc.xml))
			if tc.parseErr {
				if err == nil {
					t.Fatalf("parsed %v, want an error", e)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p := e.Problems()
			if len(p) != len(tc.problems) {
				t.Fatalf("Problems() = %q, want %d containing %q", p, len(tc.problems), tc.problems)
			}
			for i := range p {
				if !strings.Contains(p[i], tc.problems[i]) {
					t.Errorf("problem %q, want it to contain %q", p[i], tc.problems[i])
				}
			}
		})
	}
}

func plistXML(body string) string {
	return `<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict>` + body + `</dict></plist>`
}

func TestResolve(t *testing.T) {
	e := Entitlements{
		ApplicationIdentifier: "$(AppIdentifierPrefix)$(CFBundleIdentifier)",
		TeamIdentifier:        "$(DEVELOPMENT_TEAM)",
		"groups":              []any{"$(TeamIdentifierPrefix)shared"},
		"nested":              map[string]any{"id": "$(PRODUCT_BUNDLE_IDENTIFIER)", "n": uint64(1)},
	}
	got, err := e.Resolve("ABCDE12345", "com.example.attestd")
	if err != nil {
		t.Fatal(err)
	}
	want := Entitlements{
		ApplicationIdentifier: "ABCDE12345.com.example.attestd",
		TeamIdentifier:        "ABCDE12345",
		"groups":              []any{"ABCDE12345.shared"},
		"nested":              map[string]any{"id": "com.example.attestd", "n": uint64(1)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Resolve = %#v, want %#v", got, want)
	}
	if e[TeamIdentifier] != "$(DEVELOPMENT_TEAM)" {
		t.Error("Resolve modified its receiver")
	}
	for _, tc := range []struct {
		e    Entitlements
		team string
		err  string
	}{
		{Entitlements{"k": "$(DEVELOPMENT_TEAM)"}, "", "TEAM_ID"},
		{Entitlements{"k": "$(NOPE)"}, "T", "unknown variable"},
		{Entitlements{"k": "$(CFBundleIdentifier"}, "T", "unterminated"},
	} {
		if _, err := tc.e.Resolve(tc.team, "b.c"); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Resolve(%v) err = %v, want %q", tc.e, err, tc.err)
		}
	}
	if got, err := (Entitlements{"k": "$(CFBundleIdentifier)"}).Resolve("", "b.c"); err != nil || got["k"] != "b.c" {
		t.Errorf("bundle id alone without a team: %v, %v", got, err)
	}
}

// TestCommittedEntitlements pins entitlements/*.entitlements: they parse,
// are fit to notarize, are written as Marshal writes them, and the base
// one grants nothing.
func TestCommittedEntitlements(t *testing.T) {
	for name, want := range map[string]map[string]any{
		"attestd.entitlements": {},
		"attestd.profile.entitlements": {
			ApplicationIdentifier: "$(AppIdentifierPrefix)$(CFBundleIdentifier)",
			TeamIdentifier:        "$(DEVELOPMENT_TEAM)",
		},
	} {
		data, err := os.ReadFile(filepath.Join("..", "..", "entitlements", name))
		if err != nil {
			t.Fatal(err)
		}
		e, err := ParseEntitlements(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p := e.Problems(); len(p) > 0 {
			t.Errorf("%s: %q", name, p)
		}
		if !reflect.DeepEqual(map[string]any(e), want) {
			t.Errorf("%s = %#v, want %#v", name, e, want)
		}
		canon, _ := Marshal(want)
		if string(canon) != string(data) {
			t.Errorf("%s is not in canonical form; want:\n%s", name, canon)
		}
		if _, err := e.Resolve("ABCDE12345", "dev.attestd.helper"); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestCheckAppAttestRegister(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://gate.example.com", true},
		{"https://gate.example.com:8443/attestd/", true},
		{"https://[2001:db8::1]/x", true},
		{"http://127.0.0.1:8080", true},
		{"http://localhost:8080/gate", true},
		{"http://[::1]:8080", true},
		{"http://127.0.0.2", true},
		{"http://gate.example.com", false},
		{"http://10.0.0.1", false},
		{"ftp://gate.example.com", false},
		{"gate.example.com", false},
		{"/appattest", false},
		{"https://", false},
		{"https:gate.example.com", false},
		{"https://user:secret@gate.example.com", false},
		{"https://gate.example.com/?k=v", false},
		{"https://gate.example.com/?", false},
		{"https://gate.example.com/#frag", false},
		{"https://gate.example.com/a b", false},
		{"", false},
	} {
		err := CheckAppAttestRegister(tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("CheckAppAttestRegister(%q) = %v, want ok=%v", tc.url, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrAppAttestRegister) {
			t.Errorf("CheckAppAttestRegister(%q) = %v, not ErrAppAttestRegister", tc.url, err)
		}
	}
}

func TestWithAppAttest(t *testing.T) {
	t.Parallel()
	base := Entitlements{ApplicationIdentifier: "T.b"}
	got, err := base.WithAppAttest(AppAttestProduction)
	if err != nil || got[AppAttestEnvironment] != "production" || got[ApplicationIdentifier] != "T.b" {
		t.Fatalf("WithAppAttest = %v, %v", got, err)
	}
	if _, ok := base[AppAttestEnvironment]; ok {
		t.Error("WithAppAttest modified its receiver")
	}
	if same, err := base.WithAppAttest(""); err != nil || len(same) != 1 {
		t.Errorf("WithAppAttest(\"\") = %v, %v", same, err)
	}
	if again, err := got.WithAppAttest(AppAttestProduction); err != nil || again[AppAttestEnvironment] != "production" {
		t.Errorf("claiming the same environment again: %v, %v", again, err)
	}
	if _, err := got.WithAppAttest(AppAttestDevelopment); err == nil {
		t.Error("WithAppAttest replaced production with development")
	}
	if _, err := base.WithAppAttest("sandbox"); !errors.Is(err, ErrAppAttestEnvironment) {
		t.Errorf("WithAppAttest(sandbox) = %v", err)
	}
}
