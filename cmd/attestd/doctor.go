package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/attestd/attestd/bridge/client"
	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/server"
	"github.com/attestd/attestd/bridge/socket"
	"github.com/attestd/attestd/darwin"
)

func init() {
	register(&command{
		name: "doctor",
		summary: "Check whether this Mac and this helper can get DeviceCheck tokens.\n\n" +
			"Each check reports pass, fail or skipped, with a hint for failures; the exit\n" +
			"status is 1 when any check fails. When everything passes, doctor asks\n" +
			"DeviceCheck for one token and prints only its fingerprint.",
		usage: "doctor [--json] [--launchd NAME] [--socket PATH | --agent LABEL|KEY] [--timeout DURATION] [--no-token]",
		run:   runDoctor,
	})
}

// Check statuses.
const (
	statusPass = "pass"
	statusFail = "fail"
	statusSkip = "skipped"
)

// check is one line of the doctor report; its JSON form is what
// "attestd doctor --json" prints.
type check struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
	Hint   string `json:"hint,omitempty"`
}

// doctorReport is the whole report.
type doctorReport struct {
	OK       bool    `json:"ok"`
	Platform string  `json:"platform"`
	Checks   []check `json:"checks"`
}

// doctorEnv holds what doctor asks the system; tests replace it.
type doctorEnv struct {
	goos, goarch string
	native       bool // darwin.Available()
	uid          int
	osVersion    func() (string, error)
	guiSession   func() (bool, error)
	dcSupported  func() (bool, error)
	signature    func() (darwin.Signature, error)
	identity     func() (darwin.Identity, error)
	activate     func(name string) ([]net.Listener, error)
	newProvider  func(darwin.DeviceCheckOptions) (provider.Provider, error)
	status       func(ctx context.Context, path string) (server.StatusResult, error)
}

// systemDoctorEnv asks the real system; a func var so tests can swap it.
var systemDoctorEnv = func() doctorEnv {
	return doctorEnv{
		goos:        runtime.GOOS,
		goarch:      runtime.GOARCH,
		native:      darwin.Available(),
		uid:         os.Getuid(),
		osVersion:   darwin.OSVersion,
		guiSession:  darwin.GUISession,
		dcSupported: darwin.DeviceCheckSupported,
		signature:   darwin.SelfSignature,
		identity:    darwin.SelfIdentity,
		activate:    darwin.ActivateSocket,
		newProvider: darwin.NewDeviceCheck,
		status:      daemonStatus,
	}
}

// daemonStatus asks the daemon on path for attestation/status.
func daemonStatus(ctx context.Context, path string) (server.StatusResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c := client.New(path)
	defer c.Close()
	return c.Status(ctx)
}

// doctorOptions are doctor's flags.
type doctorOptions struct {
	launchd string
	socket  string
	timeout time.Duration
	noToken bool
	// logFile is where the agent's log is ("" when unknown); agentLabel
	// the label it is named after.
	logFile, agentLabel string
}

func runDoctor(ctx context.Context, s *stdio, args []string) error {
	c := commands["doctor"]
	fs := newFlagSet(s, c)
	jsonOut := fs.Bool("json", false, "print the report as JSON")
	var opts doctorOptions
	fs.StringVar(&opts.launchd, "launchd", darwin.DefaultLaunchdSocket, "the `NAME` of the socket in the LaunchAgent plist's Sockets dictionary")
	where := addClientFlags(fs)
	fs.DurationVar(&opts.timeout, "timeout", darwin.DefaultTimeout, "how long to wait for the test token")
	fs.BoolVar(&opts.noToken, "no-token", false, "do not ask DeviceCheck for a test token")
	if err := parseFlagsNoArgs(fs, args); err != nil {
		return err
	}
	sock, err := where.resolve(ctx, s)
	if err != nil {
		return err
	}
	opts.socket = sock.Path
	opts.agentLabel, opts.logFile = agentLogFile(where.agentLabel(s))
	r := diagnose(ctx, systemDoctorEnv(), opts)
	if *jsonOut {
		enc := json.NewEncoder(s.out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		r.render(s.out)
	}
	if !r.OK {
		return exitCode(1)
	}
	return nil
}

// diagnose runs every check in order. A later check that depends on an
// earlier one is skipped when that one did not pass.
func diagnose(ctx context.Context, env doctorEnv, opts doctorOptions) doctorReport {
	r := doctorReport{Platform: env.goos + "/" + env.goarch}
	add := func(c check) check {
		r.Checks = append(r.Checks, c)
		return c
	}
	if !env.native {
		add(check{Name: "platform", Status: statusSkip,
			Detail: fmt.Sprintf("%s: DeviceCheck needs macOS, so the macOS checks are skipped", r.Platform),
			Hint:   "use --provider dev for development on this system"})
		for _, name := range []string{"macos-version", "gui-session", "devicecheck-supported", "team-id", "hardened-runtime", "bundle-id", "launchd"} {
			add(check{Name: name, Status: statusSkip, Detail: "macOS only"})
		}
		sock := add(socketCheck(env, opts.socket))
		add(daemonCheck(ctx, env, opts.socket, sock))
		add(check{Name: "token", Status: statusSkip, Detail: "macOS only"})
		add(logCheck(opts))
		r.OK = r.failures() == 0
		return r
	}

	add(check{Name: "platform", Status: statusPass, Detail: r.Platform})
	add(versionCheck(env))
	gui := add(guiCheck(env))
	supported := add(supportedCheck(env, gui))
	sig, sigErr := env.signature()
	add(teamCheck(sig, sigErr))
	add(hardenedCheck(sig, sigErr))
	add(bundleCheck(env))
	add(launchdCheck(env, opts.launchd))
	sock := add(socketCheck(env, opts.socket))
	add(daemonCheck(ctx, env, opts.socket, sock))

	switch {
	case opts.noToken:
		add(check{Name: "token", Status: statusSkip, Detail: "not asked for (--no-token)"})
	case supported.Status != statusPass:
		add(check{Name: "token", Status: statusSkip, Detail: "DeviceCheck is not available here"})
	case r.failures() > 0:
		add(check{Name: "token", Status: statusSkip, Detail: "not asked for: fix the failed checks first"})
	default:
		add(tokenCheck(ctx, env, opts.timeout))
	}
	add(logCheck(opts))
	r.OK = r.failures() == 0
	return r
}

func (r doctorReport) failures() int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == statusFail {
			n++
		}
	}
	return n
}

func versionCheck(env doctorEnv) check {
	c := check{Name: "macos-version"}
	v, err := env.osVersion()
	if err != nil {
		c.Status, c.Detail = statusFail, err.Error()
		return c
	}
	c.Status, c.Detail = statusPass, "macOS "+v
	return c
}

func guiCheck(env doctorEnv) check {
	c := check{Name: "gui-session"}
	ok, err := env.guiSession()
	switch {
	case err != nil:
		c.Status, c.Detail = statusFail, err.Error()
		c.Hint = provider.ErrNoGUISession.Hint
	case !ok:
		c.Status, c.Detail = statusFail, "this process's security session has no graphic access (SSH, a LaunchDaemon or a headless CI job)"
		c.Hint = provider.ErrNoGUISession.Hint
	default:
		c.Status, c.Detail = statusPass, "the security session has graphic access"
	}
	return c
}

func supportedCheck(env doctorEnv, gui check) check {
	c := check{Name: "devicecheck-supported"}
	if gui.Status != statusPass {
		c.Status, c.Detail = statusSkip, "not asked: without a GUI session DeviceCheck would crash the process"
		return c
	}
	ok, err := env.dcSupported()
	switch {
	case err != nil:
		c.Status, c.Detail, c.Hint = statusFail, err.Error(), provider.HintOf(err)
	case !ok:
		c.Status, c.Detail = statusFail, "DCDevice.isSupported is false"
		c.Hint = provider.MacOSRequirement + "; use --provider dev for development"
	default:
		c.Status, c.Detail = statusPass, "DCDevice.isSupported is true"
	}
	return c
}

const signHint = "sign the helper bundle with a Developer ID Application certificate: " +
	"codesign --force --options runtime --timestamp --sign \"Developer ID Application: NAME (TEAMID)\" Attestd.app " +
	"(or use the packaging pipeline)"

func teamCheck(sig darwin.Signature, err error) check {
	c := check{Name: "team-id"}
	switch {
	case err != nil:
		c.Status, c.Detail = statusFail, "read the own code signature: "+err.Error()
	case sig.TeamID == "" || sig.AdHoc():
		c.Status, c.Detail = statusFail, sig.String()+": DeviceCheck will refuse a helper without a Team ID"
		c.Hint = signHint
	default:
		c.Status, c.Detail = statusPass, sig.String()
	}
	return c
}

func hardenedCheck(sig darwin.Signature, err error) check {
	c := check{Name: "hardened-runtime"}
	switch {
	case err != nil:
		c.Status, c.Detail = statusSkip, "the own code signature could not be read (see team-id)"
	case !sig.Signed:
		c.Status, c.Detail = statusSkip, "not signed"
	case !sig.HardenedRuntime():
		c.Status, c.Detail = statusFail, "the signature lacks the hardened runtime flag (0x10000), which notarization requires"
		c.Hint = "sign with --options runtime"
	default:
		c.Status, c.Detail = statusPass, "the signature has the hardened runtime flag"
	}
	return c
}

func bundleCheck(env doctorEnv) check {
	c := check{Name: "bundle-id"}
	id, err := env.identity()
	switch {
	case err != nil:
		c.Status, c.Detail = statusFail, err.Error()
	case id.BundleID == "":
		c.Status, c.Detail = statusFail, "not running inside an app bundle"
		c.Hint = "run the executable inside its helper bundle, Attestd.app/Contents/MacOS/attestd, so the header's b field and DeviceCheck see its bundle identifier"
	default:
		c.Status, c.Detail = statusPass, id.BundleID
	}
	return c
}

func launchdCheck(env doctorEnv, name string) check {
	c := check{Name: "launchd"}
	ls, err := env.activate(name)
	for _, l := range ls {
		l.Close()
	}
	var ae *darwin.ActivateError
	switch {
	case err == nil:
		c.Status, c.Detail = statusPass, fmt.Sprintf("launchd handed over %d socket(s) named %q", len(ls), name)
	case errors.Is(err, syscall.ESRCH) || errors.Is(err, syscall.ENOENT):
		// doctor is rarely the launchd job itself: from a shell, launchd
		// answers ESRCH, or ENOENT when it counts the shell's app as the job.
		c.Status, c.Detail = statusSkip, fmt.Sprintf("this process has no launchd socket named %q (normal when run from a shell; the daemon's own socket is checked below)", name)
	case errors.As(err, &ae):
		c.Status, c.Detail, c.Hint = statusFail, err.Error(), ae.Hint()
	default:
		c.Status, c.Detail = statusFail, err.Error()
	}
	return c
}

// socketCheck looks at the daemon's socket path: a Unix socket owned by
// this user, private to it, in a private directory, with a daemon answering.
func socketCheck(env doctorEnv, path string) check {
	c := check{Name: "socket"}
	if path == "" {
		c.Status, c.Detail = statusSkip, "no socket path"
		return c
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		c.Status, c.Detail = statusSkip, fmt.Sprintf("no socket at %s: the daemon is not running there", path)
		c.Hint = "start it with \"attestd serve\" or load the LaunchAgent; name the helper with --agent LABEL, or give --socket PATH if it listens elsewhere"
		return c
	}
	if err != nil {
		c.Status, c.Detail = statusFail, err.Error()
		return c
	}
	if fi.Mode().Type() != fs.ModeSocket {
		c.Status, c.Detail = statusFail, fmt.Sprintf("%s is not a socket (%v)", path, fi.Mode())
		c.Hint = "remove it, or point $" + socket.EnvVar + " at the daemon's socket"
		return c
	}
	if problem := privateProblem(fi, env.uid); problem != "" {
		c.Status, c.Detail = statusFail, fmt.Sprintf("socket %s: %s", path, problem)
		c.Hint = "restart the daemon so it recreates the socket with mode 0600 (launchd: SockPathMode 384)"
		return c
	}
	dir := filepath.Dir(path)
	if di, err := os.Stat(dir); err != nil {
		c.Status, c.Detail = statusFail, err.Error()
		return c
	} else if problem := privateProblem(di, env.uid); problem != "" {
		c.Status, c.Detail = statusFail, fmt.Sprintf("directory %s: %s", dir, problem)
		c.Hint = fmt.Sprintf("chmod 700 %s", dir)
		return c
	}
	if !socket.Alive(path) {
		c.Status, c.Detail = statusSkip, fmt.Sprintf("%s (mode %#o) exists but nobody answers on it (a stale socket)", path, fi.Mode().Perm())
		c.Hint = "start the daemon; it replaces the stale socket"
		return c
	}
	c.Status, c.Detail = statusPass, fmt.Sprintf("%s (mode %#o), a daemon answers", path, fi.Mode().Perm())
	return c
}

// privateProblem says what is wrong with fi for a file only uid may use,
// or "".
func privateProblem(fi fs.FileInfo, uid int) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != uid {
		return fmt.Sprintf("owned by uid %d, not %d", st.Uid, uid)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Sprintf("mode %#o lets other users in", perm)
	}
	return ""
}

// daemonCheck asks the daemon behind a healthy socket what it serves.
func daemonCheck(ctx context.Context, env doctorEnv, path string, sock check) check {
	c := check{Name: "daemon"}
	if sock.Status != statusPass {
		c.Status, c.Detail = statusSkip, "no daemon answers on the socket"
		return c
	}
	st, err := env.status(ctx, path)
	if err != nil {
		c.Status, c.Detail, c.Hint = statusFail, "attestation/status: "+err.Error(), provider.HintOf(err)
		return c
	}
	c.Detail = fmt.Sprintf("attestd %s, provider %s, %d of %d tokens ready, %d served",
		st.Version, st.Provider, st.Pool.Ready, st.Pool.Capacity, st.Pool.Counters.Served)
	if e := st.Pool.LastError; e != nil {
		c.Detail += fmt.Sprintf("; last error (%s): %s", e.Reason, e.Message)
		if hint := cannotStartHint(e.Reason); hint != "" && st.Pool.ConsecutiveFailures > 0 {
			// The daemon serves, but its provider cannot make tokens.
			c.Status, c.Hint = statusFail, hint
			return c
		}
	}
	if env.native && st.Provider != header.KindDeviceCheck {
		c.Status = statusFail
		c.Detail += ": the daemon does not serve DeviceCheck tokens"
		c.Hint = "restart it with --provider devicecheck (or auto); development tokens are never valid in production"
		return c
	}
	c.Status = statusPass
	return c
}

// cannotStartHint says what to do about a daemon whose provider fails for
// a reason no retry of a generation can cure, or "" for other reasons.
func cannotStartHint(reason string) string {
	switch reason {
	case provider.ReasonUnsupported:
		return "DeviceCheck works only on macOS 12 or later; on other systems run the daemon with --provider dev"
	case provider.ReasonNoGUISession:
		return provider.ErrNoGUISession.Hint
	}
	return ""
}

func tokenCheck(ctx context.Context, env doctorEnv, timeout time.Duration) check {
	c := check{Name: "token"}
	p, err := env.newProvider(darwin.DeviceCheckOptions{Timeout: timeout})
	if err != nil {
		c.Status, c.Detail, c.Hint = statusFail, err.Error(), provider.HintOf(err)
		return c
	}
	tok, err := p.Generate(ctx)
	if err != nil {
		c.Status, c.Detail, c.Hint = statusFail, err.Error(), joinHints(provider.HintOf(err), appIDHint)
		if code, ok := provider.DCErrorCodeOf(err); ok {
			c.Detail += fmt.Sprintf(" [dcErrorCode %d]", code)
		}
		return c
	}
	c.Status = statusPass
	c.Detail = fmt.Sprintf("DeviceCheck gave a %d-byte token, fingerprint %s", len(tok), header.Fingerprint(tok))
	return c
}

// render writes the report for people.
func (r doctorReport) render(w io.Writer) {
	fmt.Fprintf(w, "attestd doctor (%s, attestd %s)\n", r.Platform, version)
	width := 0
	for _, c := range r.Checks {
		width = max(width, len(c.Name))
	}
	skipped := 0
	for _, c := range r.Checks {
		fmt.Fprintf(w, "  %-7s  %-*s  %s\n", c.Status, width, c.Name, c.Detail)
		if c.Hint != "" && c.Status != statusPass {
			fmt.Fprintf(w, "  %-7s  %-*s  hint: %s\n", "", width, "", c.Hint)
		}
		if c.Status == statusSkip {
			skipped++
		}
	}
	switch n := r.failures(); {
	case n == 1:
		fmt.Fprintf(w, "1 check failed\n")
	case n > 1:
		fmt.Fprintf(w, "%d checks failed\n", n)
	case skipped > 0:
		fmt.Fprintf(w, "no check failed (%d skipped)\n", skipped)
	default:
		fmt.Fprintf(w, "all checks passed\n")
	}
}
