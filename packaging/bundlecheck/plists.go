package bundlecheck

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/attestd/attestd/bridge/socket"
	"github.com/attestd/attestd/packaging/bundle"
	"github.com/attestd/attestd/packaging/plists"
)

// CheckInfoPlist applies the info-plist rule to a parsed Info.plist.
func CheckInfoPlist(info map[string]any, bundleID string) []Finding {
	var out []Finding
	add := func(fix, format string, args ...any) {
		out = append(out, Finding{Rule: RuleInfoPlist, Subject: "Info.plist", Problem: fmt.Sprintf(format, args...), Fix: fix})
	}
	rebuild := "make bundle BUNDLE_ID=" + bundleID + " (then make sign)"
	wantStr := map[string]string{
		"CFBundleIdentifier":     bundleID,
		"CFBundleExecutable":     bundle.Executable,
		"CFBundlePackageType":    "APPL",
		"LSMinimumSystemVersion": plists.MinimumSystemVersion,
	}
	for _, k := range []string{"CFBundleIdentifier", "CFBundleExecutable", "CFBundlePackageType", "LSMinimumSystemVersion"} {
		v, ok := info[k]
		s, isStr := v.(string)
		switch {
		case !ok:
			add(rebuild, "%s missing", k)
		case !isStr:
			add(rebuild, "%s is a %T, want a string", k, v)
		case s != wantStr[k]:
			add(rebuild, "%s is %q, want %q", k, s, wantStr[k])
		}
	}
	for _, k := range []string{"CFBundleShortVersionString", "CFBundleVersion"} {
		s, ok := info[k].(string)
		if !ok || s == "" || plists.BundleVersion(s) != s {
			add("make bundle VERSION=1.2.3", "%s %v is not one to three period-separated integers", k, info[k])
		}
	}
	if b, ok := info["LSUIElement"].(bool); !ok || !b {
		add(rebuild, "LSUIElement is %v, want true (keeps the helper out of the Dock)", info["LSUIElement"])
	}
	return out
}

// AgentWant is what the LaunchAgent plist must say.
type AgentWant struct {
	Label string
	// PeerRequirement is the --peer-requirement the agent must pass,
	// exactly ("" for none): plists.PeerRequirement(PEER_REQUIREMENT,
	// TEAM_ID).
	PeerRequirement string
	// BundleDir and Executable name the helper bundle's directory
	// ("Attestd.app") and CFBundleExecutable, so BundleProgram can be
	// resolved in the host layout.
	BundleDir  string
	Executable string
	// Provider is the --provider the agent must run (empty:
	// devicecheck), and AppAttestRegister its --appattest-register ("" for
	// none): bundle.AgentProvider(PROVIDER, APPATTEST_REGISTER) and
	// APPATTEST_REGISTER.
	Provider          string
	AppAttestRegister string
	// Entitlements are the helper's signing entitlements; when set, a
	// provider that requires App Attest needs its entitlement there.
	Entitlements plists.Entitlements
}

// regen is the fix for a LaunchAgent plist that differs from what
// packaging/plists writes.
const regen = "make bundle (regenerates dist/LaunchAgents/LABEL.plist with packaging/plists)"

// CheckLaunchAgent applies the agent rules to a parsed LaunchAgent plist
// meant for Host.app/Contents/Library/LaunchAgents.
func CheckLaunchAgent(a map[string]any, want AgentWant) []Finding {
	var out []Finding
	add := func(r Rule, fix, format string, args ...any) {
		out = append(out, Finding{Rule: r, Subject: "LaunchAgent", Problem: fmt.Sprintf(format, args...), Fix: fix})
	}
	if l, _ := a["Label"].(string); l != want.Label {
		add(RuleAgentLabel, "make bundle LABEL="+want.Label, "Label is %v, want %q (LABEL)", a["Label"], want.Label)
	}

	// BundleProgram, resolved against a host app root.
	wantProg := path.Join(bundle.HostHelpersDir, want.BundleDir, "Contents/MacOS", want.Executable)
	if _, ok := a["Program"]; ok {
		add(RuleBundleProgram, regen, "has Program; a plist inside the host app names the executable with BundleProgram (relative to the app), which SMAppService requires")
	}
	switch bp, ok := a["BundleProgram"].(string); {
	case !ok:
		add(RuleBundleProgram, regen, "BundleProgram missing or not a string (want %q)", wantProg)
	case path.IsAbs(bp):
		add(RuleBundleProgram, regen, "BundleProgram %q is absolute; it must be relative to Host.app (%q)", bp, wantProg)
	case path.Join("/Host.app", bp) != path.Join("/Host.app", wantProg):
		add(RuleBundleProgram, regen, "BundleProgram %q resolves to Host.app/%s, not the helper executable Host.app/%s", bp, strings.TrimPrefix(path.Join("/Host.app", bp), "/Host.app/"), wantProg)
	}

	// ProgramArguments: argv[0] then "serve … --launchd NAME".
	argv, argErr := stringList(a["ProgramArguments"])
	sockets, _ := a["Sockets"].(map[string]any)
	switch {
	case argErr != nil:
		add(RuleAgentSocket, regen, "ProgramArguments %v", argErr)
	case len(argv) < 2 || argv[1] != "serve":
		add(RuleAgentSocket, regen, "ProgramArguments %q must start with argv[0] then \"serve\" (launchd passes the array as the whole argv)", argv)
	default:
		name, ok := plists.LaunchdSocketName(argv)
		switch {
		case !ok:
			add(RuleAgentSocket, regen, "ProgramArguments %q do not pass --launchd NAME, so serve would not use the launchd socket", argv)
		case sockets == nil || sockets[name] == nil:
			add(RuleAgentSocket, regen, "ProgramArguments name launchd socket %q, but Sockets declares %v", name, mapKeys(sockets))
		}
		out = append(out, checkAgentArgs(argv, want)...)
	}
	if len(sockets) == 0 {
		add(RuleAgentSocket, regen, "no Sockets dictionary; launchd cannot start the helper on demand")
	}
	for _, name := range mapKeys(sockets) {
		for _, p := range checkSocket(sockets[name]) {
			add(RuleAgentSocket, regen, "socket %q: %s", name, p)
		}
	}

	switch v := a["LimitLoadToSessionType"].(type) {
	case string:
		if v != plists.SessionAqua {
			add(RuleAgentSession, regen, "LimitLoadToSessionType is %q, want %q (DeviceCheck needs a GUI login session)", v, plists.SessionAqua)
		}
	case []any:
		if len(v) != 1 || v[0] != plists.SessionAqua {
			add(RuleAgentSession, regen, "LimitLoadToSessionType is %v, want only %q (DeviceCheck needs a GUI login session)", v, plists.SessionAqua)
		}
	default:
		add(RuleAgentSession, regen, "LimitLoadToSessionType missing (want %q): outside a GUI session DCDevice traps the process", plists.SessionAqua)
	}

	if v, ok := a["KeepAlive"]; ok && v != false {
		add(RuleAgentOnDemand, regen, "KeepAlive is %v; the helper is started on demand by its socket and must be free to exit", v)
	}
	if v, ok := a["RunAtLoad"]; ok && v != false {
		add(RuleAgentOnDemand, regen, "RunAtLoad is %v; socket activation starts the helper when a client connects", v)
	}
	if v, ok := a["ProcessType"]; ok && v == "Background" {
		add(RuleAgentOnDemand, regen, "ProcessType Background throttles the helper below the app-server's ~100 ms deadline; use %s", plists.ProcessTypeInteractive)
	}
	return out
}

// checkAgentArgs applies the agent-peer-requirement and agent-log rules
// to a well-formed "serve" argument vector.
func checkAgentArgs(argv []string, want AgentWant) []Finding {
	var out []Finding
	add := func(r Rule, fix, format string, args ...any) {
		out = append(out, Finding{Rule: r, Subject: "LaunchAgent", Problem: fmt.Sprintf(format, args...), Fix: fix})
	}
	const rebuild = "make bundle with the PEER_REQUIREMENT and TEAM_ID you verify with"
	req, hasReq := plists.FlagValue(argv, "peer-requirement")
	switch {
	case want.PeerRequirement == "" && hasReq:
		add(RuleAgentPeer, rebuild, "the agent admits only peers satisfying %q, but none was expected", req)
	case want.PeerRequirement != "" && !hasReq:
		add(RuleAgentPeer, "make bundle TEAM_ID=… (the team's requirement is the default), or PEER_REQUIREMENT=none to admit any process of the user knowingly",
			"no --peer-requirement: any process of the user may ask for the team's tokens; want %q", want.PeerRequirement)
	case req != want.PeerRequirement:
		add(RuleAgentPeer, rebuild, "--peer-requirement is %q, want %q", req, want.PeerRequirement)
	}
	out = append(out, checkAgentProvider(argv, want)...)
	switch lf, ok := plists.FlagValue(argv, "log-file"); {
	case !ok:
		add(RuleAgentLog, regen,
			"no --log-file: launchd sends the helper's stderr to /dev/null, so a failing helper leaves no trace (want %s)", plists.LogFile(want.Label))
	case !strings.HasPrefix(lf, "~/"):
		add(RuleAgentLog, regen,
			"--log-file %q is not under the user's home (~/…): every user of the Mac would share it", lf)
	}
	return out
}

// checkAgentProvider applies the agent-provider rule: the agent runs the
// provider and registration URL the make variables say, a provider fit to
// ship, a registration URL the helper may use, and App Attest only when
// the helper is entitled to it.
func checkAgentProvider(argv []string, want AgentWant) []Finding {
	var out []Finding
	add := func(fix, format string, args ...any) {
		out = append(out, Finding{Rule: RuleAgentProvider, Subject: "LaunchAgent", Problem: fmt.Sprintf(format, args...), Fix: fix})
	}
	wantProvider := want.Provider
	if wantProvider == "" {
		wantProvider = plists.ProviderDeviceCheck
	}
	const rebuild = "make bundle with the PROVIDER and APPATTEST_REGISTER you verify with"
	provider, _ := plists.FlagValue(argv, "provider")
	switch {
	case !slices.Contains(bundle.ShippedProviders, provider):
		add("make bundle PROVIDER=auto, devicecheck or appattest",
			"--provider %q: a shipped agent runs %s", provider, strings.Join(bundle.ShippedProviders, ", "))
	case provider != wantProvider:
		add(rebuild, "--provider is %q, want %q", provider, wantProvider)
	}
	reg, hasReg := plists.FlagValue(argv, "appattest-register")
	switch {
	case hasReg && plists.CheckAppAttestRegister(reg) != nil:
		add("make bundle APPATTEST_REGISTER=https://…", "%v", plists.CheckAppAttestRegister(reg))
	case reg != want.AppAttestRegister:
		add(rebuild, "--appattest-register is %q, want %q", reg, want.AppAttestRegister)
	}
	if _, entitled := want.Entitlements[plists.AppAttestEnvironment]; provider == plists.ProviderAppAttest && want.Entitlements != nil && !entitled {
		add("make bundle PROVIDER=appattest APPATTEST_ENV=… PROFILE=… (then make sign), or PROVIDER=auto",
			"--provider appattest, but the helper is not signed with the App Attest entitlement (%s)", plists.AppAttestEnvironment)
	}
	return out
}

// CheckAppAttestEntitlement applies the entitlements rule to the App
// Attest environment the helper is signed with: exactly APPATTEST_ENV, or
// none when it is empty.
func CheckAppAttestEntitlement(name string, e plists.Entitlements, env string) []Finding {
	got, has := e[plists.AppAttestEnvironment]
	switch {
	case env == "" && has:
		return []Finding{{Rule: RuleEntitlements, Subject: name, Problem: fmt.Sprintf("claims App Attest (%s = %v) but APPATTEST_ENV is empty", plists.AppAttestEnvironment, got),
			Fix: fmt.Sprintf("verify with APPATTEST_ENV=%v, or make bundle without APPATTEST_ENV (then make sign)", got)}}
	case env != "" && !has:
		return []Finding{{Rule: RuleEntitlements, Subject: name, Problem: fmt.Sprintf("has no %s, but APPATTEST_ENV=%s", plists.AppAttestEnvironment, env),
			Fix: "make bundle PROFILE=… APPATTEST_ENV=" + env + " (then make sign)"}}
	case env != "" && got != env:
		return []Finding{{Rule: RuleEntitlements, Subject: name, Problem: fmt.Sprintf("claims App Attest environment %v, but APPATTEST_ENV=%s", got, env),
			Fix: "make bundle PROFILE=… APPATTEST_ENV=" + env + " (then make sign)"}}
	}
	return nil
}

func checkSocket(v any) []string {
	var list []any
	switch v := v.(type) {
	case map[string]any:
		list = []any{v}
	case []any:
		list = v
	default:
		return []string{fmt.Sprintf("is a %T, want a dictionary", v)}
	}
	var out []string
	for _, e := range list {
		d, ok := e.(map[string]any)
		if !ok {
			out = append(out, fmt.Sprintf("entry is a %T, want a dictionary", e))
			continue
		}
		if t, ok := d["SockType"]; ok && t != "stream" {
			out = append(out, fmt.Sprintf("SockType %v, want stream", t))
		}
		key, hasKey := d["SecureSocketWithKey"].(string)
		p, hasPath := d["SockPathName"].(string)
		switch {
		case hasKey && hasPath:
			out = append(out, "has both SecureSocketWithKey and SockPathName")
		case hasKey:
			if key == "" {
				out = append(out, "SecureSocketWithKey is empty")
			} else if err := socket.CheckKey(key); err != nil {
				out = append(out, err.Error())
			}
		case hasPath:
			out = append(out, fmt.Sprintf("SockPathName %q is one fixed path for every user of the Mac (launchd expands neither ~ nor variables); a shipped agent uses SecureSocketWithKey (a fixed path is for attestd agent install --socket, in development)", p))
			if !path.IsAbs(p) {
				out = append(out, fmt.Sprintf("SockPathName %q is not absolute", p))
			}
			mode, ok := intValue(d["SockPathMode"])
			if !ok {
				out = append(out, "SockPathName without SockPathMode; set 384 (0600) so only the user can connect")
			} else if mode&0o077 != 0 {
				out = append(out, fmt.Sprintf("SockPathMode %d (%#o) lets other users connect; want 384 (0600)", mode, mode))
			}
		default:
			out = append(out, "neither SecureSocketWithKey nor SockPathName")
		}
	}
	return out
}

func intValue(v any) (int64, bool) {
	switch v := v.(type) {
	case uint64:
		return int64(v), true
	case int64:
		return v, true
	}
	return 0, false
}

func stringList(v any) ([]string, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("is %T, want an array of strings", v)
	}
	out := make([]string, len(l))
	for i, e := range l {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("element %d is %T, want a string", i, e)
		}
		out[i] = s
	}
	return out, nil
}

func mapKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// CheckEntitlementsFile applies the entitlements rule to the
// entitlements file the helper is (to be) signed with.
func CheckEntitlementsFile(name string, data []byte) (plists.Entitlements, []Finding) {
	e, err := plists.ParseEntitlements(data)
	if err != nil {
		return nil, []Finding{{Rule: RuleEntitlements, Subject: name,
			Problem: err.Error(), Fix: "fix the XML in entitlements/, then make bundle"}}
	}
	var out []Finding
	for _, p := range e.Problems() {
		out = append(out, Finding{Rule: RuleEntitlements, Subject: name, Problem: p,
			Fix: "remove the key from entitlements/*.entitlements (see entitlements/README.md), then make bundle sign"})
	}
	return e, out
}

// CheckAgentKey applies the agent-socket-key rule: the helper's
// Info.plist names the LaunchAgent it ships with and the variable its
// socket is published in, as the agent itself says, so that attestd run
// from the bundle as a client finds its own host's helper.
func CheckAgentKey(info, agent map[string]any, label string) []Finding {
	var out []Finding
	add := func(format string, args ...any) {
		out = append(out, Finding{Rule: RuleAgentKey, Subject: "Info.plist", Problem: fmt.Sprintf(format, args...),
			Fix: "make bundle LABEL=" + label + " (writes both plists from the same label and SOCKET_KEY)"})
	}
	if l, _ := info[plists.InfoKeyLabel].(string); l != label {
		add("%s is %v, want the agent's label %q", plists.InfoKeyLabel, info[plists.InfoKeyLabel], label)
	}
	argv, _ := stringList(agent["ProgramArguments"])
	name, _ := plists.LaunchdSocketName(argv)
	sockets, _ := agent["Sockets"].(map[string]any)
	sock, _ := sockets[name].(map[string]any)
	want, _ := sock["SecureSocketWithKey"].(string)
	if want == "" {
		return out // a fixed path or no socket: agent-socket says why
	}
	if k, _ := info[plists.InfoKeySocketKey].(string); k != want {
		add("%s is %v, but the agent publishes its socket in $%s: attestd in this bundle would look for another host's helper", plists.InfoKeySocketKey, info[plists.InfoKeySocketKey], want)
	}
	return out
}
