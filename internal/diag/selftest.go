package diag

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/darwin"
)

// Selftest runs every check that decides whether attestd works on this
// machine: the portable ones everywhere (a token through a private
// socket), and on a Mac its version, the GUI session, the main run loop,
// the own signature, DeviceCheck (each Apple call bounded and timed),
// where Apple runs the completion handler, App Attest (isSupported, a
// Keychain item, a key, an assertion), the peer code requirement and,
// with cfg.Launchd, a temporary LaunchAgent answering through launchd.
func Selftest(ctx context.Context, env Env, cfg SelftestConfig) Report {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultSelftestTimeout
	}
	head := Report{Attestd: cfg.Version, Go: runtime.Version(), Time: env.Now().UTC().Format(time.RFC3339)}
	goos, goarch := env.Platform()
	return runList(ctx, env, selftestList(cfg, goos+"/"+goarch), head)
}

func selftestList(cfg SelftestConfig, platform string) list {
	var dc deviceCheckRun // what devicecheck-token found, for completion-queue
	var aa appAttestRun   // what each App Attest check found, for the next
	return list{command: selftestCommand, offMac: fmt.Sprintf("macOS only (this is %s)", platform), steps: []step{
		{name: "platform", check: func(r *run) Check { return platformCheck(r.env, cfg.Version) }},
		{name: "socket-roundtrip", check: func(r *run) Check { return socketCheckRoundTrip(r.ctx, r.env, cfg) }},
		{name: "macos", macOnly: true, check: func(r *run) Check { return macosCheck(r.env) }},
		{name: "gui-session", macOnly: true, check: func(r *run) Check { return selftestGUICheck(r.env) }},
		{name: "main-run-loop", macOnly: true, check: func(r *run) Check { return mainLoopCheck(r.ctx, r.env) }},
		{name: "identity", macOnly: true, check: func(r *run) Check {
			sig, err := r.signature()
			return identityCheck(r.env, sig, err)
		}},
		{name: "devicecheck-supported", macOnly: true, check: func(r *run) Check {
			return boundedSupportedCheck(r.ctx, r.env, r.result("gui-session"), cfg.Timeout)
		}},
		{name: "devicecheck-token", macOnly: true, check: func(r *run) Check { return dc.token(r, cfg.Timeout) }},
		{name: "completion-queue", macOnly: true, check: dc.completionQueue},
		{name: "appattest-supported", macOnly: true, check: func(r *run) Check { return aa.supported(r, cfg.Timeout) }},
		{name: "appattest-keychain", macOnly: true, check: func(r *run) Check { return aa.keychain(r, cfg.Timeout) }},
		{name: "appattest-key", macOnly: true, check: func(r *run) Check { return aa.key(r, cfg.Timeout) }},
		{name: "appattest-assertion", macOnly: true, check: func(r *run) Check { return aa.assertion(r, cfg.Timeout) }},
		{name: "peer-requirement", macOnly: true, check: func(r *run) Check {
			sig, err := r.signature()
			return peerRequirementCheck(r.ctx, r.env, cfg, sig, err)
		}},
		{name: "launchd-agent", macOnly: true, check: func(r *run) Check {
			if cfg.Launchd {
				return launchdAgentCheck(r.ctx, r.env, cfg)
			}
			c := newCheck("launchd-agent")
			c.set(Skipped, "opt-in: run with --launchd to bootstrap a temporary LaunchAgent in gui/$UID for a moment")
			return c
		}},
	}}
}

func platformCheck(env Env, version string) Check {
	c := newCheck("platform")
	goos, goarch := env.Platform()
	c.set(Pass, fmt.Sprintf("%s/%s, attestd %s, %s", goos, goarch, version, runtime.Version()))
	c.fact("os", goos)
	c.fact("arch", goarch)
	return c
}

func macosCheck(env Env) Check {
	c := newCheck("macos")
	v, ok := c.osVersion(env)
	if !ok {
		return c
	}
	_, goarch := env.Platform()
	c.fact("version", v)
	c.fact("arch", goarch)
	detail := fmt.Sprintf("macOS %s, %s", v, goarch)
	tr, err := env.Translated()
	switch {
	case err != nil:
		detail += " (Rosetta: " + err.Error() + ")"
	case tr:
		detail += " under Rosetta on Apple silicon"
		c.fact("rosetta", true)
	default:
		c.fact("rosetta", false)
	}
	c.set(Pass, detail)
	return c
}

// selftestGUICheck reports the GUI session. Without one, DeviceCheck would
// trap the process, so its checks are skipped: "skipped", not "fail",
// because the daemon itself runs as a LaunchAgent in the Aqua session.
// (Doctor's gui-session check fails instead: it asks whether this process
// can get tokens.)
func selftestGUICheck(env Env) Check {
	c := newCheck("gui-session")
	ok, err := env.GUISession()
	switch {
	case err != nil:
		c.set(Fail, "SessionGetInfo: "+err.Error())
		c.Hint = provider.NoGUISessionHint
	case !ok:
		c.set(Skipped, "this process's security session has no graphic access (SSH, a LaunchDaemon or a headless job): the DeviceCheck checks are skipped, since DCDevice would trap the process")
		c.Hint = "run attestd selftest from Terminal in the logged-in desktop session (or add --launchd: the agent runs in the GUI session)"
	default:
		c.set(Pass, "the security session has graphic access")
	}
	c.fact("graphicAccess", ok && err == nil)
	return c
}

// mainLoopCheck reports whether the main thread runs its run loop and
// whether a function posted to the main dispatch queue runs.
func mainLoopCheck(ctx context.Context, env Env) Check {
	c := newCheck("main-run-loop")
	running, why := env.MainLoopRunning()
	c.fact("running", running)
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	start := env.Now()
	err := env.PingMainQueue(pctx)
	c.took(env.Now().Sub(start))
	c.fact("mainQueueServiced", err == nil)
	switch {
	case err == nil:
		c.set(Pass, "the main thread runs its run loop: a function posted to the main dispatch queue ran on the main thread")
	case running:
		c.set(Fail, "the main run loop runs, yet the main queue did not: "+err.Error())
	default:
		c.set(Fail, fmt.Sprintf("the main thread does not run its run loop (%s): a completion handler Apple posted to the main queue would never run: %v", why, err))
		c.Hint = "report this: attestd runs the main run loop for serve, bridge, doctor, selftest and probe"
	}
	return c
}

func identityCheck(env Env, sig darwin.Signature, sigErr error) Check {
	c := newCheck("identity")
	if sigErr != nil {
		c.set(Fail, "read the own code signature: "+sigErr.Error())
		return c
	}
	id, err := env.Identity()
	if err != nil {
		c.set(Fail, "read the own identity: "+err.Error())
		return c
	}
	c.fact("bundleId", id.BundleID)
	c.fact("teamId", id.TeamID)
	c.fact("identifier", sig.Identifier)
	c.fact("signing", signingKind(sig))
	c.fact("hardenedRuntime", sig.HardenedRuntime())
	c.fact("flags", fmt.Sprintf("%#x", sig.Flags))
	bundle := id.BundleID
	if bundle == "" {
		bundle = "none (not inside an app bundle)"
	}
	detail := fmt.Sprintf("%s; bundle id %s; hardened runtime %v", signingKind(sig), bundle, sig.HardenedRuntime())
	if !hasTeam(sig) {
		detail += "; without a Team ID DeviceCheck is expected to refuse tokens (devicecheck-token checks that it does so cleanly)"
		c.Hint = signHint
	}
	c.set(Pass, detail)
	return c
}
