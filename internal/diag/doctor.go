package diag

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/darwin"
)

// Doctor checks whether this Mac and this helper can get DeviceCheck
// tokens: the Mac, the session, the signature, launchd, the daemon's
// socket and what the daemon serves, then, when everything passed, one
// real token, and last where the agent logs.
func Doctor(ctx context.Context, env Env, cfg DoctorConfig) Report {
	return runList(ctx, env, doctorList(cfg), Report{Attestd: cfg.Version})
}

func doctorList(cfg DoctorConfig) list {
	return list{command: doctorCommand, offMac: "macOS only", steps: []step{
		{name: "platform", check: doctorPlatformCheck},
		{name: "macos-version", macOnly: true, check: func(r *run) Check { return versionCheck(r.env) }},
		{name: "gui-session", macOnly: true, check: func(r *run) Check { return guiCheck(r.env) }},
		{name: "devicecheck-supported", macOnly: true, check: func(r *run) Check {
			return supportedCheck(r.env, r.result("gui-session"))
		}},
		{name: "team-id", macOnly: true, check: func(r *run) Check { return teamCheck(r.signature()) }},
		{name: "hardened-runtime", macOnly: true, check: func(r *run) Check { return hardenedCheck(r.signature()) }},
		{name: "bundle-id", macOnly: true, check: func(r *run) Check { return bundleCheck(r.env) }},
		{name: "launchd", macOnly: true, check: func(r *run) Check { return launchdCheck(r.env, cfg.Launchd) }},
		{name: "socket", check: func(r *run) Check { return socketCheck(r.env, cfg.Socket) }},
		{name: "daemon", check: func(r *run) Check {
			return daemonCheck(r.ctx, r.env, cfg.Socket, r.result("socket"))
		}},
		{name: "token", macOnly: true, check: func(r *run) Check { return doctorTokenCheck(r, cfg) }},
		{name: "log", check: func(*run) Check { return logCheck(cfg) }},
	}}
}

func doctorPlatformCheck(r *run) Check {
	c := newCheck("platform")
	if !r.env.Native() {
		c.set(Skipped, fmt.Sprintf("%s: DeviceCheck needs macOS, so the macOS checks are skipped", r.report.Platform))
		c.Hint = provider.UseDevProvider + " on this system"
		return c
	}
	c.set(Pass, r.report.Platform)
	return c
}

func versionCheck(env Env) Check {
	c := newCheck("macos-version")
	if v, ok := c.osVersion(env); ok {
		c.set(Pass, "macOS "+v)
	}
	return c
}

func guiCheck(env Env) Check {
	c := newCheck("gui-session")
	ok, err := env.GUISession()
	switch {
	case err != nil:
		c.set(Fail, err.Error())
		c.Hint = provider.NoGUISessionHint
	case !ok:
		c.set(Fail, "this process's security session has no graphic access (SSH, a LaunchDaemon or a headless CI job)")
		c.Hint = provider.NoGUISessionHint
	default:
		c.set(Pass, "the security session has graphic access")
	}
	return c
}

func supportedCheck(env Env, gui Check) Check {
	c := newCheck("devicecheck-supported")
	if gui.Status != Pass {
		c.set(Skipped, "not asked: without a GUI session DeviceCheck would crash the process")
		return c
	}
	ok, err := env.DeviceCheckSupported()
	switch {
	case err != nil:
		c.fail(err)
	case !ok:
		c.set(Fail, "DCDevice.isSupported is false")
		c.Hint = provider.UnsupportedHint
	default:
		c.set(Pass, "DCDevice.isSupported is true")
	}
	return c
}

func teamCheck(sig darwin.Signature, err error) Check {
	c := newCheck("team-id")
	switch {
	case err != nil:
		c.set(Fail, "read the own code signature: "+err.Error())
	case sig.TeamID == "" || sig.AdHoc():
		c.set(Fail, sig.String()+": DeviceCheck will refuse a helper without a Team ID")
		c.Hint = signHint
	default:
		c.set(Pass, sig.String())
	}
	return c
}

func hardenedCheck(sig darwin.Signature, err error) Check {
	c := newCheck("hardened-runtime")
	switch {
	case err != nil:
		c.set(Skipped, "the own code signature could not be read (see team-id)")
	case !sig.Signed:
		c.set(Skipped, "not signed")
	case !sig.HardenedRuntime():
		c.set(Fail, "the signature lacks the hardened runtime flag (0x10000), which notarization requires")
		c.Hint = "sign with --options runtime"
	default:
		c.set(Pass, "the signature has the hardened runtime flag")
	}
	return c
}

func bundleCheck(env Env) Check {
	c := newCheck("bundle-id")
	id, err := env.Identity()
	switch {
	case err != nil:
		c.set(Fail, err.Error())
	case id.BundleID == "":
		c.set(Fail, "not running inside an app bundle")
		c.Hint = "run the executable inside its helper bundle, Attestd.app/Contents/MacOS/attestd, so the header's b field and DeviceCheck see its bundle identifier"
	default:
		c.set(Pass, id.BundleID)
	}
	return c
}

func launchdCheck(env Env, name string) Check {
	c := newCheck("launchd")
	ls, err := env.ActivateSocket(name)
	for _, l := range ls {
		l.Close()
	}
	var ae *darwin.ActivateError
	switch {
	case err == nil:
		c.set(Pass, fmt.Sprintf("launchd handed over %d socket(s) named %q", len(ls), name))
	case errors.Is(err, syscall.ESRCH) || errors.Is(err, syscall.ENOENT):
		// doctor is rarely the launchd job itself: from a shell, launchd
		// answers ESRCH, or ENOENT when it counts the shell's app as the job.
		c.set(Skipped, fmt.Sprintf("this process has no launchd socket named %q (normal when run from a shell; the daemon's own socket is checked below)", name))
	case errors.As(err, &ae):
		c.set(Fail, err.Error())
		c.Hint = hint.Of(err)
	default:
		c.set(Fail, err.Error())
	}
	return c
}

// doctorTokenCheck asks DeviceCheck for one token, but only when it is
// available, was not declined, and no check before it failed.
func doctorTokenCheck(r *run, cfg DoctorConfig) Check {
	c := newCheck("token")
	switch {
	case cfg.NoToken:
		c.set(Skipped, "not asked for (--no-token)")
	case r.result("devicecheck-supported").Status != Pass:
		c.set(Skipped, "DeviceCheck is not available here")
	case r.failures() > 0:
		c.set(Skipped, "not asked for: fix the failed checks first")
	default:
		return tokenCheck(r.ctx, r.env, cfg.Timeout)
	}
	return c
}

func tokenCheck(ctx context.Context, env Env, timeout time.Duration) Check {
	c := newCheck("token")
	p, err := env.NewDeviceCheck(darwin.DeviceCheckOptions{Timeout: timeout})
	if err != nil {
		c.fail(err)
		return c
	}
	ans, err := p.Generate(ctx)
	tok := ans.Token
	if err != nil {
		c.set(Fail, err.Error())
		c.Hint = joinHints(hint.Of(err), appIDHint)
		if code, ok := provider.DCErrorCodeOf(err); ok {
			c.Detail += fmt.Sprintf(" [dcErrorCode %d]", code)
		}
		return c
	}
	c.set(Pass, fmt.Sprintf("DeviceCheck gave a %d-byte token, fingerprint %s", len(tok), header.Fingerprint(tok)))
	return c
}
