package bundlecheck

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/packaging/bundle"
	"github.com/attestd/attestd/packaging/internal/testbin"
	"github.com/attestd/attestd/packaging/plists"
	"github.com/attestd/attestd/packaging/profile/profiletest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

const (
	bundleID = "com.example.Host.attestd"
	teamID   = "ABCDE12345"
	label    = "com.example.Host.attestd.agent"
)

var (
	infoPlist     = []byte("<plist>info</plist>")
	codeResources = []byte("<plist>resources</plist>")
)

func sum(b []byte) []byte { h := sha256.Sum256(b); return h[:] }

// cms stands in for a Developer ID CMS signature with a timestamp token.
func cms() []byte {
	return append([]byte{0x30, 0x82, 0x10, 0x00}, append(append([]byte{}, timeStampTokenOID...), 0x31, 0x00)...)
}

// goodSignature is a correctly signed slice as go-macho would report it.
func goodSignature() *Signature {
	ents, _ := plists.Marshal(map[string]any{})
	return &Signature{
		Identifier:    bundleID,
		TeamID:        teamID,
		Flags:         FlagRuntime,
		HashType:      HashSHA256,
		InfoPlistHash: sum(infoPlist),
		ResourcesHash: sum(codeResources),
		Entitlements:  string(ents),
		CMS:           cms(),
		Leaf:          &Certificate{CommonName: "Developer ID Application: Example Inc (" + teamID + ")", OrgUnit: teamID},
	}
}

func goodWant() Want {
	return Want{BundleID: bundleID, TeamID: teamID, InfoPlist: infoPlist, CodeResources: codeResources, Entitlements: plists.Entitlements{}}
}

func rules(fs []Finding) []Rule {
	var out []Rule
	for _, f := range fs {
		out = append(out, f.Rule)
	}
	return out
}

func TestCheckSignature(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mutate  func(s *Slice, w *Want)
		want    []Rule
		problem string // in the first finding's problem
	}{
		{name: "correctly signed", mutate: func(*Slice, *Want) {}},
		{name: "any team accepted", mutate: func(_ *Slice, w *Want) { w.TeamID = "" }},
		{name: "SHA-1 CodeDirectory", mutate: func(s *Slice, _ *Want) {
			h1 := func(b []byte) []byte { h := sha256.Sum256(b); return h[:20] }
			s.Signature.HashType = HashSHA256Trunc
			s.Signature.InfoPlistHash = h1(infoPlist)
			s.Signature.ResourcesHash = h1(codeResources)
		}},
		{name: "unsigned", mutate: func(s *Slice, _ *Want) { s.Signature = nil }, want: []Rule{RuleSigned}, problem: "no LC_CODE_SIGNATURE"},
		{name: "linker-signed", mutate: func(s *Slice, _ *Want) {
			*s.Signature = Signature{Identifier: "a.out", Flags: FlagAdhoc | FlagLinkerSigned, HashType: HashSHA256}
		}, want: []Rule{RuleNotAdhoc}, problem: "Go linker"},
		{name: "codesign -s -", mutate: func(s *Slice, _ *Want) {
			s.Signature.Flags |= FlagAdhoc
			s.Signature.CMS = nil
			s.Signature.TeamID = ""
		}, want: []Rule{RuleNotAdhoc}, problem: "ad-hoc signature:"},
		{name: "no CMS", mutate: func(s *Slice, _ *Want) { s.Signature.CMS = nil }, want: []Rule{RuleNotAdhoc}},
		{name: "no hardened runtime", mutate: func(s *Slice, _ *Want) { s.Signature.Flags = 0 }, want: []Rule{RuleRuntime}, problem: "0x10000"},
		{name: "no timestamp", mutate: func(s *Slice, _ *Want) { s.Signature.CMS = []byte{0x30, 0x00} }, want: []Rule{RuleTimestamp}},
		{name: "development certificate", mutate: func(s *Slice, _ *Want) {
			s.Signature.Leaf = &Certificate{CommonName: "Apple Development: me@example.com (ZZZZZ99999)", OrgUnit: teamID}
		}, want: []Rule{RuleDeveloperID}, problem: "Apple Development"},
		{name: "certificate of another team", mutate: func(s *Slice, _ *Want) { s.Signature.Leaf.OrgUnit = "ZZZZZ99999" },
			want: []Rule{RuleDeveloperID}, problem: "ZZZZZ99999"},
		{name: "certificate unreadable", mutate: func(s *Slice, _ *Want) { s.Signature.Leaf = nil }},
		{name: "no team", mutate: func(s *Slice, _ *Want) { s.Signature.TeamID = "" }, want: []Rule{RuleTeamID}, problem: "no Team ID"},
		{name: "other team", mutate: func(s *Slice, _ *Want) { s.Signature.TeamID, s.Signature.Leaf.OrgUnit = "ZZZZZ99999", "ZZZZZ99999" }, want: []Rule{RuleTeamID}, problem: `"ZZZZZ99999", want "ABCDE12345"`},
		{name: "identifier", mutate: func(s *Slice, _ *Want) { s.Signature.Identifier = "attestd" }, want: []Rule{RuleIdentifier}, problem: `"attestd"`},
		{name: "Info.plist not bound", mutate: func(s *Slice, _ *Want) { s.Signature.InfoPlistHash = make([]byte, 32) }, want: []Rule{RuleInfoBound}, problem: "slot 1"},
		{name: "Info.plist changed", mutate: func(_ *Slice, w *Want) { w.InfoPlist = []byte("edited") }, want: []Rule{RuleInfoBound}, problem: "changed after signing"},
		{name: "not sealed", mutate: func(s *Slice, _ *Want) { s.Signature.ResourcesHash = nil }, want: []Rule{RuleSealed}},
		{name: "resources changed", mutate: func(_ *Slice, w *Want) { w.CodeResources = []byte("edited") }, want: []Rule{RuleSealed}},
		{name: "get-task-allow", mutate: func(s *Slice, w *Want) {
			s.Signature.Entitlements = `<?xml version="1.0"?><plist version="1.0"><dict><key>com.apple.security.get-task-allow</key><true/></dict></plist>`
			w.Entitlements = nil
		}, want: []Rule{RuleEntitlements}, problem: "get-task-allow"},
		{name: "entitlements do not parse", mutate: func(s *Slice, _ *Want) { s.Signature.Entitlements = "<plist" }, want: []Rule{RuleEntitlements}, problem: "parse"},
		{name: "other entitlements", mutate: func(_ *Slice, w *Want) {
			w.Entitlements = plists.Entitlements{plists.ApplicationIdentifier: teamID + "." + bundleID}
		}, want: []Rule{RuleEntitlements}, problem: "differ"},
		{name: "several at once", mutate: func(s *Slice, _ *Want) {
			s.Signature.Flags = 0
			s.Signature.Identifier = "x"
		}, want: []Rule{RuleRuntime, RuleIdentifier}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Slice{Arch: "arm64", MinOS: 11 << 16, Signature: goodSignature()}
			w := goodWant()
			tc.mutate(&s, &w)
			got := CheckSignature(s, w)
			if !equalRules(rules(got), tc.want) {
				t.Fatalf("findings %v, want rules %v", got, tc.want)
			}
			for _, f := range got {
				if f.Subject != "arm64 slice" || f.Fix == "" {
					t.Errorf("finding without subject or fix: %+v", f)
				}
			}
			if tc.problem != "" && !strings.Contains(got[0].Problem, tc.problem) {
				t.Errorf("problem %q, want it to contain %q", got[0].Problem, tc.problem)
			}
		})
	}
}

func equalRules(a, b []Rule) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFixesNameTheStep(t *testing.T) {
	s := Slice{Arch: "x86_64"}
	for _, f := range CheckSignature(s, goodWant()) {
		if !strings.Contains(f.Fix, "make sign") {
			t.Errorf("fix %q does not name make sign", f.Fix)
		}
	}
	s.Signature = goodSignature()
	s.Signature.Flags = 0
	s.Signature.CMS = []byte{1}
	for _, f := range CheckSignature(s, goodWant()) {
		switch f.Rule {
		case RuleRuntime:
			if !strings.Contains(f.Fix, "--options runtime") {
				t.Errorf("runtime fix %q", f.Fix)
			}
		case RuleTimestamp:
			if !strings.Contains(f.Fix, "--timestamp") {
				t.Errorf("timestamp fix %q", f.Fix)
			}
		}
	}
}

func TestCheckSlices(t *testing.T) {
	v := func(maj, min uint32) uint32 { return maj<<16 | min<<8 }
	for _, tc := range []struct {
		name   string
		slices []Slice
		want   []Rule
	}{
		{"both", []Slice{{Arch: "arm64", MinOS: v(11, 0)}, {Arch: "x86_64", MinOS: v(12, 0)}}, nil},
		{"arm64 only", []Slice{{Arch: "arm64", MinOS: v(12, 0)}}, []Rule{RuleSlices}},
		{"none", nil, []Rule{RuleSlices, RuleSlices}},
		{"minos 13", []Slice{{Arch: "arm64", MinOS: v(13, 0)}, {Arch: "x86_64", MinOS: v(12, 0)}}, []Rule{RuleMinOS}},
		{"minos 12.0.1", []Slice{{Arch: "arm64", MinOS: v(12, 0) | 1}, {Arch: "x86_64", MinOS: v(12, 0)}}, []Rule{RuleMinOS}},
		{"no minos", []Slice{{Arch: "arm64"}, {Arch: "x86_64", MinOS: v(12, 0)}}, []Rule{RuleMinOS}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CheckSlices(tc.slices); !equalRules(rules(got), tc.want) {
				t.Errorf("findings %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCheckConsistent(t *testing.T) {
	a, b := goodSignature(), goodSignature()
	if got := CheckConsistent([]Slice{{Arch: "arm64", Signature: a}, {Arch: "x86_64", Signature: b}}); got != nil {
		t.Errorf("alike slices: %v", got)
	}
	b.TeamID = "OTHER"
	if got := CheckConsistent([]Slice{{Arch: "arm64", Signature: a}, {Arch: "x86_64", Signature: b}}); len(got) != 1 || got[0].Rule != RuleConsistent {
		t.Errorf("different teams: %v", got)
	}
}

func goodInfo() map[string]any {
	return map[string]any{
		"CFBundleExecutable": "attestd", "CFBundleIdentifier": bundleID, "CFBundleName": "Attestd",
		"CFBundlePackageType": "APPL", "CFBundleShortVersionString": "1.2.3", "CFBundleVersion": "1.2.3",
		"LSMinimumSystemVersion": "12.0", "LSUIElement": true,
	}
}

func TestCheckInfoPlist(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(map[string]any)
		n      int
	}{
		{"good", func(map[string]any) {}, 0},
		{"other bundle id", func(m map[string]any) { m["CFBundleIdentifier"] = "x.y" }, 1},
		{"missing executable", func(m map[string]any) { delete(m, "CFBundleExecutable") }, 1},
		{"package type", func(m map[string]any) { m["CFBundlePackageType"] = "BNDL" }, 1},
		{"minimum system", func(m map[string]any) { m["LSMinimumSystemVersion"] = "14.0" }, 1},
		{"wrong type", func(m map[string]any) { m["LSMinimumSystemVersion"] = uint64(12) }, 1},
		{"bad version", func(m map[string]any) { m["CFBundleVersion"] = "abc123" }, 1},
		{"dock icon", func(m map[string]any) { m["LSUIElement"] = false }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := goodInfo()
			tc.mutate(m)
			got := CheckInfoPlist(m, bundleID)
			if len(got) != tc.n {
				t.Errorf("findings %v, want %d", got, tc.n)
			}
			for _, f := range got {
				if f.Rule != RuleInfoPlist || f.Fix == "" {
					t.Errorf("finding %+v", f)
				}
			}
		})
	}
}

func goodAgent(t *testing.T, c plists.AgentConfig) map[string]any {
	t.Helper()
	if c.BundleProgram == "" && c.Program == "" {
		c.BundleProgram = bundle.BundleProgram
	}
	c.Label = label
	a, err := plists.NewLaunchAgent(c)
	if err != nil {
		t.Fatal(err)
	}
	b, err := plists.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	m, err := plists.Dict(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCheckLaunchAgent(t *testing.T) {
	want := AgentWant{Label: label, BundleDir: bundle.Dir, Executable: bundle.Executable}
	t.Run("App Attest as built", func(t *testing.T) {
		const reg = "https://gate.example.com"
		w := want
		w.Provider, w.AppAttestRegister = "appattest", reg
		entitled := plists.Entitlements{plists.AppAttestEnvironment: "production"}
		m := goodAgent(t, plists.AgentConfig{Provider: "appattest", AppAttestRegister: reg})
		w.Entitlements = entitled
		if got := CheckLaunchAgent(m, w); len(got) != 0 {
			t.Errorf("findings %v", got)
		}
		w.Entitlements = plists.Entitlements{}
		if got := CheckLaunchAgent(m, w); len(got) != 1 || got[0].Rule != RuleAgentProvider || !strings.Contains(got[0].Problem, "not signed with the App Attest entitlement") {
			t.Errorf("appattest without the entitlement: %v", got)
		}
		w.Provider, w.Entitlements = "auto", nil
		if got := CheckLaunchAgent(m, w); len(got) != 1 || !strings.Contains(got[0].Problem, `want "auto"`) {
			t.Errorf("built with appattest, verified with auto: %v", got)
		}
	})
	for _, tc := range []struct {
		name    string
		cfg     plists.AgentConfig
		mutate  func(map[string]any)
		want    []Rule
		problem string
	}{
		{name: "generated", mutate: func(map[string]any) {}},
		{name: "generated, fixed socket", cfg: plists.AgentConfig{SocketPath: "/tmp/a.sock"}, mutate: func(map[string]any) {},
			want: []Rule{RuleAgentSocket}, problem: "every user of the Mac"},
		{name: "the shared key", mutate: func(m map[string]any) {
			m["Sockets"].(map[string]any)["Listeners"].(map[string]any)["SecureSocketWithKey"] = "ATTESTD_SOCKET"
		}, want: []Rule{RuleAgentSocket}, problem: "shared manual override"},
		{name: "unexpected peer requirement", cfg: plists.AgentConfig{PeerRequirement: "identifier x"}, mutate: func(map[string]any) {},
			want: []Rule{RuleAgentPeer}, problem: "none was expected"},
		{name: "no log file", cfg: plists.AgentConfig{LogFile: "-"}, mutate: func(map[string]any) {},
			want: []Rule{RuleAgentLog}, problem: "no trace"},
		{name: "shared log file", cfg: plists.AgentConfig{LogFile: "/tmp/attestd.log"}, mutate: func(map[string]any) {},
			want: []Rule{RuleAgentLog}, problem: "every user"},
		{name: "session array", mutate: func(m map[string]any) { m["LimitLoadToSessionType"] = []any{"Aqua"} }},
		{name: "socket array", mutate: func(m map[string]any) {
			s := m["Sockets"].(map[string]any)
			s["Listeners"] = []any{s["Listeners"]}
		}},
		{name: "wrong label", mutate: func(m map[string]any) { m["Label"] = "x" }, want: []Rule{RuleAgentLabel}},
		{name: "BundleProgram into Resources", mutate: func(m map[string]any) {
			m["BundleProgram"] = "Contents/Resources/Attestd.app/Contents/MacOS/attestd"
		}, want: []Rule{RuleBundleProgram}, problem: "resolves to"},
		{name: "BundleProgram misses the helper bundle", mutate: func(m map[string]any) {
			m["BundleProgram"] = "Contents/MacOS/attestd"
		}, want: []Rule{RuleBundleProgram}},
		{name: "BundleProgram escapes", mutate: func(m map[string]any) {
			m["BundleProgram"] = "../Attestd.app/Contents/MacOS/attestd"
		}, want: []Rule{RuleBundleProgram}},
		{name: "BundleProgram absolute", mutate: func(m map[string]any) {
			m["BundleProgram"] = "/Applications/Host.app/" + bundle.BundleProgram
		}, want: []Rule{RuleBundleProgram}, problem: "absolute"},
		{name: "BundleProgram missing", mutate: func(m map[string]any) { delete(m, "BundleProgram") }, want: []Rule{RuleBundleProgram}},
		{name: "BundleProgram not clean but resolves", mutate: func(m map[string]any) {
			m["BundleProgram"] = "Contents/Helpers/./Attestd.app/Contents/MacOS/attestd"
		}},
		{name: "Program instead", cfg: plists.AgentConfig{Program: "/Applications/Attestd.app/Contents/MacOS/attestd"},
			mutate: func(map[string]any) {}, want: []Rule{RuleBundleProgram, RuleBundleProgram}},
		{name: "missing socket", mutate: func(m map[string]any) { delete(m, "Sockets") },
			want: []Rule{RuleAgentSocket, RuleAgentSocket}, problem: `launchd socket "Listeners"`},
		{name: "socket renamed", mutate: func(m map[string]any) {
			s := m["Sockets"].(map[string]any)
			s["Other"] = s["Listeners"]
			delete(s, "Listeners")
		}, want: []Rule{RuleAgentSocket}, problem: "declares [Other]"},
		{name: "no --launchd", mutate: func(m map[string]any) {
			m["ProgramArguments"] = []any{"attestd", "serve", "--provider", "devicecheck", "--log-file", "~/x.log"}
		}, want: []Rule{RuleAgentSocket}, problem: "--launchd"},
		{name: "argv[0] missing", mutate: func(m map[string]any) {
			m["ProgramArguments"] = []any{"serve", "--launchd", "Listeners"}
		}, want: []Rule{RuleAgentSocket}, problem: "argv[0]"},
		{name: "arguments not strings", mutate: func(m map[string]any) {
			m["ProgramArguments"] = []any{"attestd", uint64(1)}
		}, want: []Rule{RuleAgentSocket}},
		{name: "socket without path or key", mutate: func(m map[string]any) {
			m["Sockets"] = map[string]any{"Listeners": map[string]any{"SockType": "stream"}}
		}, want: []Rule{RuleAgentSocket}, problem: "neither"},
		{name: "socket path without mode", mutate: func(m map[string]any) {
			m["Sockets"] = map[string]any{"Listeners": map[string]any{"SockPathName": "/tmp/a.sock"}}
		}, want: []Rule{RuleAgentSocket, RuleAgentSocket}, problem: "every user"},
		{name: "socket world-writable", mutate: func(m map[string]any) {
			m["Sockets"] = map[string]any{"Listeners": map[string]any{"SockPathName": "/tmp/a.sock", "SockPathMode": uint64(0o666)}}
		}, want: []Rule{RuleAgentSocket, RuleAgentSocket}, problem: "every user"},
		{name: "datagram", mutate: func(m map[string]any) {
			m["Sockets"].(map[string]any)["Listeners"].(map[string]any)["SockType"] = "dgram"
		}, want: []Rule{RuleAgentSocket}},
		{name: "Background session", mutate: func(m map[string]any) { m["LimitLoadToSessionType"] = "Background" },
			want: []Rule{RuleAgentSession}},
		{name: "no session type", mutate: func(m map[string]any) { delete(m, "LimitLoadToSessionType") },
			want: []Rule{RuleAgentSession}},
		{name: "two session types", mutate: func(m map[string]any) { m["LimitLoadToSessionType"] = []any{"Aqua", "Background"} },
			want: []Rule{RuleAgentSession}},
		{name: "KeepAlive", mutate: func(m map[string]any) { m["KeepAlive"] = true }, want: []Rule{RuleAgentOnDemand}},
		{name: "KeepAlive dict", mutate: func(m map[string]any) { m["KeepAlive"] = map[string]any{"SuccessfulExit": false} }, want: []Rule{RuleAgentOnDemand}},
		{name: "KeepAlive false", mutate: func(m map[string]any) { m["KeepAlive"] = false }},
		{name: "RunAtLoad", mutate: func(m map[string]any) { m["RunAtLoad"] = true }, want: []Rule{RuleAgentOnDemand}},
		{name: "Background process", mutate: func(m map[string]any) { m["ProcessType"] = "Background" }, want: []Rule{RuleAgentOnDemand}},
		{name: "development provider", cfg: plists.AgentConfig{Provider: "dev"}, mutate: func(map[string]any) {},
			want: []Rule{RuleAgentProvider}, problem: "a shipped agent runs"},
		{name: "App Attest provider, DeviceCheck expected", cfg: plists.AgentConfig{Provider: "auto"}, mutate: func(map[string]any) {},
			want: []Rule{RuleAgentProvider}, problem: `--provider is "auto", want "devicecheck"`},
		{name: "registration URL not expected", cfg: plists.AgentConfig{Provider: "auto", AppAttestRegister: "https://gate.example.com"},
			mutate: func(m map[string]any) {}, want: []Rule{RuleAgentProvider, RuleAgentProvider}},
		{name: "registration URL in the clear", mutate: func(m map[string]any) {
			m["ProgramArguments"] = append(m["ProgramArguments"].([]any), "--appattest-register", "http://gate.example.com")
		}, want: []Rule{RuleAgentProvider}, problem: "plain http"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := goodAgent(t, tc.cfg)
			tc.mutate(m)
			got := CheckLaunchAgent(m, want)
			if !equalRules(rules(got), tc.want) {
				t.Fatalf("findings %v, want %v", got, tc.want)
			}
			if tc.problem != "" && !strings.Contains(got[0].Problem, tc.problem) {
				t.Errorf("problem %q, want it to contain %q", got[0].Problem, tc.problem)
			}
		})
	}
}

var (
	caOnce sync.Once
	ca     [2]*profiletest.CA
	caErr  error
)

// testCAs are two test certification authorities shaped like Apple's:
// the first signs the profiles the tests trust, the second others.
func testCAs(t *testing.T) (trusted, other *profiletest.CA) {
	t.Helper()
	caOnce.Do(func() {
		for i := range ca {
			if ca[i], caErr = profiletest.NewCA(); caErr != nil {
				return
			}
		}
	})
	if caErr != nil {
		t.Fatal(caErr)
	}
	return ca[0], ca[1]
}

func makeProfile(t *testing.T, ca *profiletest.CA, f profiletest.Fields, o profiletest.SignOptions) []byte {
	t.Helper()
	if f.TeamID == "" {
		f.TeamID = teamID
	}
	if f.BundleID == "" {
		f.BundleID = bundleID
	}
	plist, err := f.Plist()
	if err != nil {
		t.Fatal(err)
	}
	if o.SigningTime.IsZero() {
		o.SigningTime = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	}
	data, err := ca.Sign(plist, o)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// signingEnts are the profile-variant entitlements resolved for the test
// bundle, plus extra.
func signingEnts(extra map[string]any) plists.Entitlements {
	e := plists.Entitlements{plists.ApplicationIdentifier: teamID + "." + bundleID, plists.TeamIdentifier: teamID}
	for k, v := range extra {
		e[k] = v
	}
	return e
}

func TestCheckProfile(t *testing.T) {
	t.Parallel()
	trusted, other := testCAs(t)
	devCert, devKey, err := trusted.Issue("Developer ID Application: Example Inc ("+teamID+")", "Example Inc")
	if err != nil {
		t.Fatal(err)
	}
	const aa = plists.AppAttestEnvironment
	both := map[string]any{aa: []any{"development", "production"}}
	prod := map[string]any{aa: "production"}
	dev := map[string]any{aa: "development"}
	now := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	signer := &Certificate{CommonName: devCert.Subject.CommonName, OrgUnit: teamID, Raw: devCert.Raw}
	otherSigner := &Certificate{CommonName: "Developer ID Application: Other (ZZZZZ99999)", Raw: trusted.Root.Raw}
	for _, tc := range []struct {
		name    string
		fields  profiletest.Fields
		sign    profiletest.SignOptions
		ca      *profiletest.CA // nil: trusted
		data    []byte          // instead of a made profile
		team    string          // TEAM_ID; "-" for none
		ents    plists.Entitlements
		signer  *Certificate // the code signature's; nil: not signed yet
		problem string       // in the one finding; "" for none
		n       int          // findings when more than one
	}{
		{name: "lists the signing certificate", fields: profiletest.Fields{Certificates: [][]byte{trusted.Root.Raw, devCert.Raw}},
			ents: signingEnts(nil), signer: signer},
		{name: "does not list the signing certificate", fields: profiletest.Fields{Certificates: [][]byte{devCert.Raw}},
			ents: signingEnts(nil), signer: otherSigner, problem: "does not list the certificate the helper is signed with"},
		{name: "Developer ID profile, no App Attest", ents: signingEnts(nil)},
		{name: "App Attest production, profile grants both", fields: profiletest.Fields{Entitlements: both}, ents: signingEnts(prod)},
		{name: "App Attest development, profile grants both", fields: profiletest.Fields{Entitlements: both}, ents: signingEnts(dev)},
		{name: "App Attest production, profile grants production", fields: profiletest.Fields{Entitlements: prod}, ents: signingEnts(prod)},
		{name: "profile grants App Attest the signature does not claim", fields: profiletest.Fields{Entitlements: both}, ents: signingEnts(nil)},
		{name: "signature production, profile development", fields: profiletest.Fields{Entitlements: dev}, ents: signingEnts(prod),
			problem: "claims App Attest environment production, the profile grants development"},
		{name: "signature development, profile production", fields: profiletest.Fields{Entitlements: prod}, ents: signingEnts(dev),
			problem: "claims App Attest environment development, the profile grants production"},
		{name: "signature claims App Attest, profile has none", ents: signingEnts(prod), problem: "does not grant it: macOS kills the helper"},
		{name: "another restricted entitlement not granted", ents: signingEnts(map[string]any{"com.apple.developer.icloud-services": "*"}),
			problem: "com.apple.developer.icloud-services = *, which the profile does not grant"},
		{name: "hardened runtime exceptions need no profile", ents: signingEnts(map[string]any{"com.apple.security.cs.allow-jit": true})},
		{name: "team taken from the profile", team: "-", ents: signingEnts(nil)},
		{name: "wildcard App ID", fields: profiletest.Fields{BundleID: "com.example.*"}, ents: signingEnts(nil)},
		{name: "entitlements not known", ents: nil},
		{name: "other team", fields: profiletest.Fields{TeamID: "ZZZZZ99999"}, ents: signingEnts(nil), n: 2},
		{name: "other app", fields: profiletest.Fields{BundleID: "com.other"}, ents: signingEnts(nil), problem: "application identifier"},
		{name: "expired", fields: profiletest.Fields{Created: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), Expires: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
			ents: signingEnts(nil), problem: "expired on 2026-01-01"},
		{name: "development profile", fields: profiletest.Fields{Devices: []string{"00008103-001A"}}, ents: signingEnts(nil), problem: "development profile"},
		{name: "iOS profile", fields: profiletest.Fields{Platform: "iOS"}, ents: signingEnts(nil), problem: "not macOS"},
		{name: "signed without the profile entitlements", ents: plists.Entitlements{}, problem: "signing entitlements have"},
		{name: "signed by another CA", ca: other, ents: signingEnts(nil), problem: "does not chain to Apple Root CA"},
		{name: "changed after signing", sign: profiletest.SignOptions{TamperContent: true}, ents: signingEnts(nil), problem: "changed after it was signed"},
		{name: "signed by a developer certificate", sign: profiletest.SignOptions{Cert: devCert, Key: devKey}, ents: signingEnts(nil),
			problem: "not signed by Apple's provisioning-profile signing certificate"},
		{name: "not a profile", data: []byte("garbage"), ents: signingEnts(nil), problem: "not a provisioning profile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.data
			if data == nil {
				c := tc.ca
				if c == nil {
					c = trusted
				}
				data = makeProfile(t, c, tc.fields, tc.sign)
			}
			team := teamID
			if tc.team == "-" {
				team = ""
			}
			got := CheckProfile(data, ProfileWant{BundleID: bundleID, TeamID: team, Entitlements: tc.ents, Now: now, Roots: trusted.Roots(), Signer: tc.signer})
			want := tc.n
			if want == 0 && tc.problem != "" {
				want = 1
			}
			if len(got) != want {
				t.Fatalf("findings %v, want %d", got, want)
			}
			for _, f := range got {
				if f.Rule != RuleProfile || f.Fix == "" || strings.Contains(f.Problem, "\n") {
					t.Errorf("finding %+v", f)
				}
			}
			if tc.problem != "" && !strings.Contains(got[0].Problem, tc.problem) {
				t.Errorf("problem %q, want it to contain %q", got[0].Problem, tc.problem)
			}
		})
	}
}

func TestCheckNoProfile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ents plists.Entitlements
		want string
	}{
		{plists.Entitlements{}, ""},
		{plists.Entitlements{"com.apple.security.cs.allow-jit": true}, ""},
		{signingEnts(nil), "com.apple.application-identifier"},
		{signingEnts(map[string]any{plists.AppAttestEnvironment: "production"}), "APPATTEST_ENV"},
	} {
		got := checkNoProfile(tc.ents)
		if (tc.want == "") != (len(got) == 0) || (len(got) > 0 && !strings.Contains(got[0].Problem+got[0].Fix, tc.want)) {
			t.Errorf("checkNoProfile(%v) = %v, want %q", tc.ents, got, tc.want)
		}
	}
}

func TestCheckAppAttestEntitlement(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ents plists.Entitlements
		env  string
		want string
	}{
		{plists.Entitlements{}, "", ""},
		{signingEnts(map[string]any{plists.AppAttestEnvironment: "production"}), "production", ""},
		{signingEnts(map[string]any{plists.AppAttestEnvironment: "production"}), "", "APPATTEST_ENV is empty"},
		{signingEnts(nil), "production", "but APPATTEST_ENV=production"},
		{signingEnts(map[string]any{plists.AppAttestEnvironment: "development"}), "production", "environment development, but APPATTEST_ENV=production"},
	} {
		got := CheckAppAttestEntitlement("Attestd.entitlements", tc.ents, tc.env)
		if (tc.want == "") != (len(got) == 0) || (len(got) > 0 && (!strings.Contains(got[0].Problem, tc.want) || got[0].Rule != RuleEntitlements)) {
			t.Errorf("CheckAppAttestEntitlement(%v, %q) = %v, want %q", tc.ents, tc.env, got, tc.want)
		}
	}
}

func TestCheckEntitlementsFile(t *testing.T) {
	for _, tc := range []struct {
		name, xml string
		n         int
	}{
		{"empty", `<?xml version="1.0"?><plist version="1.0"><dict/></plist>`, 0},
		{"get-task-allow", `<?xml version="1.0"?><plist version="1.0"><dict><key>com.apple.security.get-task-allow</key><true/></dict></plist>`, 1},
		{"broken", `<?xml version="1.0"?><plist version="1.0"><dict><key>a</key></plist>`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, got := CheckEntitlementsFile("x.entitlements", []byte(tc.xml))
			if len(got) != tc.n {
				t.Errorf("findings %v, want %d", got, tc.n)
			}
		})
	}
}

// built assembles a bundle from real cross-built binaries, as
// "make universal bundle" does, into a temporary dist directory.
func built(t *testing.T) (Config, string) {
	t.Helper()
	arm, amd := testbin.Darwin(t)
	dist := t.TempDir()
	if err := bundle.Fat(filepath.Join(dist, "attestd"), arm, amd); err != nil {
		t.Fatal(err)
	}
	r, err := bundle.Assemble(bundle.Config{
		Binary: filepath.Join(dist, "attestd"), OutDir: dist, BundleID: bundleID, Label: label, TeamID: teamID,
		Version: testbin.Version, Entitlements: filepath.Join("..", "..", "entitlements", "attestd.entitlements"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return Config{Bundle: r.Bundle, LaunchAgent: r.LaunchAgent, Entitlements: r.Entitlements,
		BundleID: bundleID, TeamID: teamID, Label: label}, dist
}

// TestVerifyUnsignedBuild is "make universal bundle verify-bundle" on
// Linux: everything passes except the two signature findings, each
// precise.
func TestVerifyUnsignedBuild(t *testing.T) {
	c, _ := built(t)
	r, err := Verify(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 2 {
		t.Fatalf("findings:\n%v", r.Findings)
	}
	arm, amd := r.Findings[0], r.Findings[1]
	if arm.Rule != RuleNotAdhoc || arm.Subject != "arm64 slice" || !strings.Contains(arm.Problem, "linker-signed") {
		t.Errorf("arm64 finding: %+v", arm)
	}
	if amd.Rule != RuleSigned || amd.Subject != "x86_64 slice" || !strings.Contains(amd.Problem, "no LC_CODE_SIGNATURE") {
		t.Errorf("amd64 finding: %+v", amd)
	}
	if !r.Unsigned {
		t.Error("report not marked unsigned")
	}
	var b strings.Builder
	r.Write(&b)
	for _, s := range []string{"FAIL arm64 slice [not-adhoc]", "FAIL x86_64 slice [signed]", "fix: make sign", "expected"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, b.String())
		}
	}
}

func TestReadSlices(t *testing.T) {
	arm, amd := testbin.Darwin(t)
	for _, tc := range []struct {
		file   string
		arch   string
		signed bool
		flags  uint32
	}{
		{arm, "arm64", true, FlagAdhoc | FlagLinkerSigned},
		{amd, "x86_64", false, 0},
	} {
		s, err := ReadSlices(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != 1 || s[0].Arch != tc.arch {
			t.Fatalf("%s: slices %+v", tc.arch, s)
		}
		if s[0].MinOS == 0 || s[0].MinOS > minOSLimit {
			t.Errorf("%s: minos %s", tc.arch, versionString(s[0].MinOS))
		}
		if (s[0].Signature != nil) != tc.signed {
			t.Fatalf("%s: signature %+v, want signed=%v", tc.arch, s[0].Signature, tc.signed)
		}
		if tc.signed && s[0].Signature.Flags&tc.flags != tc.flags {
			t.Errorf("%s: flags %#x, want %#x set", tc.arch, s[0].Signature.Flags, tc.flags)
		}
	}
}

// TestVerifyBrokenFiles breaks one file of a built bundle at a time.
func TestVerifyBrokenFiles(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(t *testing.T, c *Config, dist string)
		want   Rule
	}{
		{"wrong BundleProgram", func(t *testing.T, c *Config, _ string) {
			rewriteAgent(t, c.LaunchAgent, func(m map[string]any) { m["BundleProgram"] = "Contents/MacOS/attestd" })
		}, RuleBundleProgram},
		{"missing socket", func(t *testing.T, c *Config, _ string) {
			rewriteAgent(t, c.LaunchAgent, func(m map[string]any) { delete(m, "Sockets") })
		}, RuleAgentSocket},
		{"get-task-allow", func(t *testing.T, c *Config, _ string) {
			b, _ := plists.Marshal(map[string]any{plists.GetTaskAllow: true})
			os.WriteFile(c.Entitlements, b, 0o644)
		}, RuleEntitlements},
		{"agent file name", func(t *testing.T, c *Config, dist string) {
			n := filepath.Join(dist, "LaunchAgents", "other.plist")
			os.Rename(c.LaunchAgent, n)
			c.LaunchAgent = n
		}, RuleAgentLabel},
		{"thin executable", func(t *testing.T, c *Config, _ string) {
			arm, _ := testbin.Darwin(t)
			b, _ := os.ReadFile(arm)
			os.WriteFile(filepath.Join(c.Bundle, "Contents", "MacOS", "attestd"), b, 0o755)
		}, RuleSlices},
		{"no executable", func(t *testing.T, c *Config, _ string) {
			os.Remove(filepath.Join(c.Bundle, "Contents", "MacOS", "attestd"))
		}, RuleSlices},
		{"Info.plist bundle id", func(t *testing.T, c *Config, _ string) { c.BundleID = "com.example.other" }, RuleInfoPlist},
		{"no Info.plist", func(t *testing.T, c *Config, _ string) {
			os.Remove(filepath.Join(c.Bundle, "Contents", "Info.plist"))
		}, RuleInfoPlist},
		{"bad profile", func(t *testing.T, c *Config, _ string) {
			os.WriteFile(filepath.Join(c.Bundle, "Contents", bundle.ProfileName), []byte("junk"), 0o644)
		}, RuleProfile},
		{"Info.plist names another socket key", func(t *testing.T, c *Config, _ string) {
			rewriteAgent(t, filepath.Join(c.Bundle, "Contents", "Info.plist"), func(m map[string]any) {
				m[plists.InfoKeySocketKey] = "ATTESTD_SOCKET_com_other_app"
			})
		}, RuleAgentKey},
		{"Info.plist without the label", func(t *testing.T, c *Config, _ string) {
			rewriteAgent(t, filepath.Join(c.Bundle, "Contents", "Info.plist"), func(m map[string]any) { delete(m, plists.InfoKeyLabel) })
		}, RuleAgentKey},
		{"peer requirement switched off", func(t *testing.T, c *Config, _ string) {
			rewriteAgent(t, c.LaunchAgent, func(m map[string]any) {
				m["ProgramArguments"] = m["ProgramArguments"].([]any)[:8] // drop --peer-requirement REQ
			})
		}, RuleAgentPeer},
		{"verified with another team's requirement", func(t *testing.T, c *Config, _ string) { c.PeerRequirement = "identifier other" }, RuleAgentPeer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, dist := built(t)
			tc.break_(t, &c, dist)
			r, err := Verify(c)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Has(tc.want, "") {
				t.Errorf("no %s finding in:\n%v", tc.want, r.Findings)
			}
		})
	}
}

func rewriteAgent(t *testing.T, name string, f func(map[string]any)) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	m, err := plists.Dict(data)
	if err != nil {
		t.Fatal(err)
	}
	f(m)
	b, err := plists.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestVerifySignedBundle runs Verify over a real bundle whose slices are
// replaced by what go-macho reads from a correctly signed one: every rule
// passes, and each single change to it is caught.
func TestVerifySignedBundle(t *testing.T) {
	c, _ := built(t)
	info, err := os.ReadFile(filepath.Join(c.Bundle, "Contents", "Info.plist"))
	if err != nil {
		t.Fatal(err)
	}
	res := []byte("<plist>sealed resources</plist>")
	os.MkdirAll(filepath.Join(c.Bundle, "Contents", "_CodeSignature"), 0o755)
	if err := os.WriteFile(filepath.Join(c.Bundle, "Contents", "_CodeSignature", "CodeResources"), res, 0o644); err != nil {
		t.Fatal(err)
	}
	signed := func() []Slice {
		var out []Slice
		for _, arch := range []string{"arm64", "x86_64"} {
			sig := goodSignature()
			sig.InfoPlistHash, sig.ResourcesHash = sum(info), sum(res)
			out = append(out, Slice{Arch: arch, MinOS: 12 << 16, Signature: sig})
		}
		return out
	}
	old := readSlices
	t.Cleanup(func() { readSlices = old })

	for _, tc := range []struct {
		name   string
		mutate func([]Slice)
		want   []Rule
	}{
		{name: "correctly signed", mutate: func([]Slice) {}},
		{name: "x86_64 without runtime", mutate: func(s []Slice) { s[1].Signature.Flags = 0 }, want: []Rule{RuleRuntime, RuleConsistent}},
		{name: "arm64 of another team", mutate: func(s []Slice) {
			s[0].Signature.TeamID, s[0].Signature.Leaf.OrgUnit = "ZZZZZ99999", "ZZZZZ99999"
		}, want: []Rule{RuleTeamID, RuleConsistent}},
		{name: "Info.plist edited after signing", mutate: func(s []Slice) {
			s[0].Signature.InfoPlistHash = sum([]byte("old"))
			s[1].Signature.InfoPlistHash = sum([]byte("old"))
		}, want: []Rule{RuleInfoBound, RuleInfoBound}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := signed()
			tc.mutate(s)
			readSlices = func(string) ([]Slice, error) { return s, nil }
			r, err := Verify(c)
			if err != nil {
				t.Fatal(err)
			}
			if !equalRules(rules(r.Findings), tc.want) {
				t.Fatalf("findings %v, want %v", r.Findings, tc.want)
			}
			if r.Unsigned {
				t.Error("a signed bundle reported as unsigned")
			}
			var b strings.Builder
			r.Write(&b)
			if len(tc.want) == 0 && !strings.Contains(b.String(), "verify: OK") {
				t.Errorf("report:\n%s", b.String())
			}
			if strings.Contains(b.String(), "expected for a") {
				t.Errorf("signed bundle got the unsigned note:\n%s", b.String())
			}
		})
	}
}

// signedAs returns both slices as go-macho reads them from the bundle c
// signed correctly, with the entitlements ents embedded.
func signedAs(t *testing.T, c Config, ents []byte) []Slice {
	t.Helper()
	info, err := os.ReadFile(filepath.Join(c.Bundle, "Contents", "Info.plist"))
	if err != nil {
		t.Fatal(err)
	}
	res := []byte("<plist>sealed resources</plist>")
	os.MkdirAll(filepath.Join(c.Bundle, "Contents", "_CodeSignature"), 0o755)
	if err := os.WriteFile(filepath.Join(c.Bundle, "Contents", "_CodeSignature", "CodeResources"), res, 0o644); err != nil {
		t.Fatal(err)
	}
	var out []Slice
	for _, arch := range []string{"arm64", "x86_64"} {
		sig := goodSignature()
		sig.InfoPlistHash, sig.ResourcesHash, sig.Entitlements = sum(info), sum(res), string(ents)
		out = append(out, Slice{Arch: arch, MinOS: 12 << 16, Signature: sig})
	}
	return out
}

// TestVerifySignedAppAttestBundle is the App Attest build through
// make bundle's engine and the verifier: a profile that grants
// production, the helper signed with production, the agent on auto with a
// registration URL. It passes as built; each single disagreement between
// the profile, the signature, the agent and the make variables is caught.
func TestVerifySignedAppAttestBundle(t *testing.T) {
	trusted, _ := testCAs(t)
	const reg = "https://gate.example.com/attestd"
	dir := t.TempDir()
	writeProfile := func(name string, ents map[string]any) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, makeProfile(t, trusted, profiletest.Fields{Entitlements: ents}, profiletest.SignOptions{}), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	prodProfile := writeProfile("prod.provisionprofile", map[string]any{plists.AppAttestEnvironment: "production"})
	devProfile := writeProfile("dev.provisionprofile", map[string]any{plists.AppAttestEnvironment: "development"})

	arm, amd := testbin.Darwin(t)
	dist := t.TempDir()
	if err := bundle.Fat(filepath.Join(dist, "attestd"), arm, amd); err != nil {
		t.Fatal(err)
	}
	r, err := bundle.Assemble(bundle.Config{
		Binary: filepath.Join(dist, "attestd"), OutDir: dist, BundleID: bundleID, Label: label, TeamID: teamID,
		Version: testbin.Version, Entitlements: filepath.Join("..", "..", "entitlements", "attestd.profile.entitlements"),
		Profile: prodProfile, AppAttestEnv: "production", AppAttestRegister: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	base := Config{Bundle: r.Bundle, LaunchAgent: r.LaunchAgent, Entitlements: r.Entitlements,
		BundleID: bundleID, TeamID: teamID, Label: label, AppAttestEnv: "production", AppAttestRegister: reg,
		ProfileRoots: trusted.Roots(), Now: func() time.Time { return time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC) }}
	asBuilt := mustRead(t, r.Entitlements)
	devEnts, _ := plists.Marshal(map[string]any(signingEnts(map[string]any{plists.AppAttestEnvironment: "development"})))
	embedded := filepath.Join(r.Bundle, "Contents", bundle.ProfileName)

	old := readSlices
	t.Cleanup(func() { readSlices = old })
	for _, tc := range []struct {
		name    string
		ents    []byte          // the signature's; nil: as built
		profile string          // embedded instead; "-" removes it
		config  func(c *Config) // verified with
		leaf    []byte          // the signing certificate's DER; nil: unknown
		want    []Rule
	}{
		{name: "as built"},
		{name: "signed with development, profile grants production", ents: devEnts,
			want: []Rule{RuleEntitlements, RuleEntitlements, RuleProfile}},
		{name: "profile grants development, signed with production", profile: devProfile, want: []Rule{RuleProfile}},
		{name: "no profile", profile: "-", want: []Rule{RuleProfile}},
		{name: "verified with APPATTEST_ENV=development", config: func(c *Config) { c.AppAttestEnv = "development" }, want: []Rule{RuleEntitlements}},
		{name: "verified without App Attest", config: func(c *Config) { c.AppAttestEnv, c.AppAttestRegister = "", "" },
			want: []Rule{RuleEntitlements, RuleAgentProvider, RuleAgentProvider}},
		{name: "verified with PROVIDER=appattest", config: func(c *Config) { c.Provider = "appattest" }, want: []Rule{RuleAgentProvider}},
		{name: "a test profile against Apple's root", config: func(c *Config) { c.ProfileRoots = nil }, want: []Rule{RuleProfile}},
		{name: "signed with a certificate the profile does not list", leaf: trusted.Intermediate.Raw, want: []Rule{RuleProfile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ents := asBuilt
			if tc.ents != nil {
				ents = tc.ents
			}
			s := signedAs(t, base, ents)
			for i := range s {
				s[i].Signature.Leaf.Raw = tc.leaf
			}
			readSlices = func(string) ([]Slice, error) { return s, nil }
			switch tc.profile {
			case "":
				copyFileTo(t, prodProfile, embedded)
			case "-":
				os.Remove(embedded)
			default:
				copyFileTo(t, tc.profile, embedded)
			}
			c := base
			if tc.config != nil {
				tc.config(&c)
			}
			rep, err := Verify(c)
			if err != nil {
				t.Fatal(err)
			}
			if !equalRules(rules(rep.Findings), tc.want) {
				t.Fatalf("findings %v, want %v", rep.Findings, tc.want)
			}
		})
	}
}

func copyFileTo(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.WriteFile(dst, mustRead(t, src), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
