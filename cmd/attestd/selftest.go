package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/attestd/attestd/bridge/client"
	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/bridge/pool"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/server"
	"github.com/attestd/attestd/darwin"
)

func init() {
	c := &command{
		name: "selftest",
		summary: "Run every check that decides whether attestd works on this machine, and print one report.\n\n" +
			"On a Mac: macOS version and architecture, the GUI session, the main run loop, the own\n" +
			"signing identity, DCDevice.isSupported and a real token (each bounded by --timeout and\n" +
			"timed), the thread and dispatch queue Apple calls the completion handler on, the peer\n" +
			"code requirement (a satisfying peer is served, another refused with peer_refused) and,\n" +
			"with --launchd, a temporary LaunchAgent in gui/$UID that must answer through launchd.\n" +
			"Without a GUI session (SSH) the DeviceCheck checks are skipped; elsewhere every macOS\n" +
			"check is skipped and the portable ones run. Tokens are shown only as sizes and\n" +
			"fingerprints. Exit status 0 when no check failed (skipped checks do not fail).",
		usage: "selftest [--json] [--timeout D] [--launchd]",
	}
	c.run = func(ctx context.Context, s *stdio, args []string) error { return runSelftest(ctx, s, c, args) }
	register(c)
}

// selftestOptions are selftest's flags.
type selftestOptions struct {
	timeout time.Duration
	launchd bool
}

// DefaultSelftestTimeout bounds each Apple call of the selftest.
const defaultSelftestTimeout = 20 * time.Second

func runSelftest(ctx context.Context, s *stdio, c *command, args []string) error {
	fs := newFlagSet(s, c)
	jsonOut := fs.Bool("json", false, "print the report as JSON")
	var opts selftestOptions
	fs.DurationVar(&opts.timeout, "timeout", defaultSelftestTimeout, "bound on each call into Apple (isSupported, generateToken) and on the launchd round trip")
	fs.BoolVar(&opts.launchd, "launchd", false, "also bootstrap a temporary LaunchAgent in gui/$UID, get an answer through its socket, and boot it out again (changes your launchd state for a moment)")
	if err := parseFlagsNoArgs(fs, args); err != nil {
		return err
	}
	if opts.timeout <= 0 {
		return usagef("--timeout must be positive")
	}
	r := selftest(ctx, systemSelftestEnv(), opts)
	if err := writeReport(s.out, *jsonOut, r, r.render); err != nil {
		return err
	}
	if !r.OK {
		return exitCode(1)
	}
	return nil
}

// writeReport prints report as indented JSON, or with render for people.
func writeReport(w io.Writer, asJSON bool, report any, render func(io.Writer)) error {
	if !asJSON {
		render(w)
		return nil
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(report)
}

// stCheck is one line of the selftest report: doctor's check plus how
// long the call it made took and the facts it found, for machines.
type stCheck struct {
	check
	// Millis is the duration of the check's main call in milliseconds.
	Millis *float64 `json:"ms,omitempty"`
	// Facts holds what the check measured, by name.
	Facts map[string]any `json:"facts,omitempty"`
}

func newCheck(name string) stCheck { return stCheck{check: check{Name: name}} }

func (c *stCheck) set(status, detail string) { c.Status, c.Detail = status, detail }

func (c *stCheck) fact(name string, v any) {
	if c.Facts == nil {
		c.Facts = map[string]any{}
	}
	c.Facts[name] = v
}

func (c *stCheck) took(d time.Duration) {
	ms := float64(d.Microseconds()) / 1000
	c.Millis = &ms
}

// selftestReport is the whole report, as "attestd selftest --json"
// prints it.
type selftestReport struct {
	OK       bool      `json:"ok"`
	Attestd  string    `json:"attestd"`
	Platform string    `json:"platform"`
	Go       string    `json:"go"`
	Time     string    `json:"time"`
	Failed   int       `json:"failed"`
	Skipped  int       `json:"skipped"`
	Checks   []stCheck `json:"checks"`
}

// macChecks are the checks that run only on macOS, in report order.
var macChecks = []string{
	"macos", "gui-session", "main-run-loop", "identity", "devicecheck-supported",
	"devicecheck-token", "completion-queue", "peer-requirement", "launchd-agent",
}

// selftestEnv holds what the selftest asks the system; tests replace it.
type selftestEnv struct {
	goos, goarch string
	native       bool // darwin.Available()
	uid, pid     int
	now          func() time.Time
	tempDir      string // where temporary sockets and plists go; "" is os.TempDir

	osVersion          func() (string, error)
	translated         func() (bool, error)
	guiSession         func() (bool, error)
	dcSupported        func() (bool, error)
	signature          func() (darwin.Signature, error)
	identity           func() (darwin.Identity, error)
	newDeviceCheck     func(darwin.DeviceCheckOptions) (provider.Provider, error)
	mainLoop           func() (bool, string)
	pingMainQueue      func(context.Context) error
	newPeerRequirement func(string) (darwin.PeerChecker, error)
	executable         func() (string, error)
	launchctl          func(ctx context.Context, args ...string) ([]byte, error)
	// pollEvery is how often the launchd check asks launchctl for the
	// socket's path while the agent starts.
	pollEvery time.Duration
}

// systemSelftestEnv asks the real system; a func var so tests can swap it.
var systemSelftestEnv = func() selftestEnv {
	return selftestEnv{
		goos: runtime.GOOS, goarch: runtime.GOARCH, native: darwin.Available(),
		uid: os.Getuid(), pid: os.Getpid(), now: time.Now,
		osVersion:          darwin.OSVersion,
		translated:         darwin.Translated,
		guiSession:         darwin.GUISession,
		dcSupported:        darwin.DeviceCheckSupported,
		signature:          darwin.SelfSignature,
		identity:           darwin.SelfIdentity,
		newDeviceCheck:     darwin.NewDeviceCheck,
		mainLoop:           darwin.MainLoopRunning,
		pingMainQueue:      darwin.PingMainQueue,
		newPeerRequirement: darwin.NewPeerRequirement,
		executable:         os.Executable,
		launchctl: func(ctx context.Context, args ...string) ([]byte, error) {
			return exec.CommandContext(ctx, "launchctl", args...).CombinedOutput()
		},
		pollEvery: 100 * time.Millisecond,
	}
}

// selftest runs every check in order; a check that depends on an earlier
// one is skipped, saying why, when that one did not pass.
func selftest(ctx context.Context, env selftestEnv, opts selftestOptions) selftestReport {
	r := selftestReport{
		Attestd: version, Platform: env.goos + "/" + env.goarch, Go: runtime.Version(),
		Time: env.now().UTC().Format(time.RFC3339),
	}
	add := func(c stCheck) stCheck {
		r.Checks = append(r.Checks, c)
		return c
	}
	add(platformCheck(env))
	add(socketCheckRoundTrip(ctx, env))
	if !env.native {
		for _, name := range macChecks {
			c := newCheck(name)
			c.set(statusSkip, fmt.Sprintf("macOS only (this is %s)", r.Platform))
			add(c)
		}
		return r.finish()
	}
	add(macosCheck(env))
	gui := add(selftestGUICheck(env))
	add(mainLoopCheck(ctx, env))
	sig, sigErr := env.signature()
	add(identityCheck(env, sig, sigErr))
	sup := add(boundedSupportedCheck(ctx, env, gui, opts.timeout))
	tok, where := tokenChecks(ctx, env, sup, sig, sigErr, opts.timeout)
	add(tok)
	add(where)
	add(peerRequirementCheck(ctx, env, sig, sigErr))
	if opts.launchd {
		add(launchdAgentCheck(ctx, env, opts.timeout))
	} else {
		c := newCheck("launchd-agent")
		c.set(statusSkip, "opt-in: run with --launchd to bootstrap a temporary LaunchAgent in gui/$UID for a moment")
		add(c)
	}
	return r.finish()
}

func (r selftestReport) finish() selftestReport {
	r.Failed, r.Skipped = 0, 0
	for _, c := range r.Checks {
		switch c.Status {
		case statusFail:
			r.Failed++
		case statusSkip:
			r.Skipped++
		}
	}
	r.OK = r.Failed == 0
	return r
}

func platformCheck(env selftestEnv) stCheck {
	c := newCheck("platform")
	c.set(statusPass, fmt.Sprintf("%s/%s, attestd %s, %s", env.goos, env.goarch, version, runtime.Version()))
	c.fact("os", env.goos)
	c.fact("arch", env.goarch)
	return c
}

// socketCheckRoundTrip serves the development provider on a private
// socket and asks it for a token with the client, as a host would.
func socketCheckRoundTrip(ctx context.Context, env selftestEnv) stCheck {
	c := newCheck("socket-roundtrip")
	start := env.now()
	value, err := tokenFromTempServer(ctx, env, nil)
	c.took(env.now().Sub(start))
	if err != nil {
		c.set(statusFail, err.Error())
		c.Hint = hint.Of(err)
		return c
	}
	v, err := header.Decode(value)
	if err != nil {
		c.set(statusFail, "the served value does not decode: "+err.Error())
		return c
	}
	c.set(statusPass, fmt.Sprintf("a private Unix socket served a %s header value (fingerprint %s) to this user", v.Kind, header.Fingerprint(value)))
	return c
}

// tokenFromTempServer starts a server with the development provider on a
// socket in a new private directory, with checkPeer, asks it for one
// token through the client, and stops it again.
func tokenFromTempServer(ctx context.Context, env selftestEnv, checkPeer func(*net.UnixConn) error) (string, error) {
	dir, err := os.MkdirTemp(env.tempDir, "attestd-st-")
	if err != nil {
		return "", fmt.Errorf("make a socket directory: %w", err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return "", fmt.Errorf("listen on %s: %w", path, err)
	}
	p := pool.New(pool.Config{Provider: provider.Dev{}, Size: 1})
	defer p.Close()
	// A generous deadline: this checks the path, not the pool's speed.
	srv := server.New(server.Config{Tokens: p, Version: version, Deadline: 5 * time.Second, CheckPeer: checkPeer})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		<-served
	}()
	cl := client.New(path)
	defer cl.Close()
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return cl.Token(tctx)
}

func macosCheck(env selftestEnv) stCheck {
	c := newCheck("macos")
	v, err := env.osVersion()
	if err != nil {
		c.set(statusFail, err.Error())
		return c
	}
	c.fact("version", v)
	c.fact("arch", env.goarch)
	detail := fmt.Sprintf("macOS %s, %s", v, env.goarch)
	tr, err := env.translated()
	switch {
	case err != nil:
		detail += " (Rosetta: " + err.Error() + ")"
	case tr:
		detail += " under Rosetta on Apple silicon"
		c.fact("rosetta", true)
	default:
		c.fact("rosetta", false)
	}
	c.set(statusPass, detail)
	return c
}

// selftestGUICheck reports the GUI session. Without one, DeviceCheck would
// trap the process, so its checks are skipped: "skipped", not "fail",
// because the daemon itself runs as a LaunchAgent in the Aqua session.
func selftestGUICheck(env selftestEnv) stCheck {
	c := newCheck("gui-session")
	ok, err := env.guiSession()
	switch {
	case err != nil:
		c.set(statusFail, "SessionGetInfo: "+err.Error())
		c.Hint = provider.NoGUISessionHint
	case !ok:
		c.set(statusSkip, "this process's security session has no graphic access (SSH, a LaunchDaemon or a headless job): the DeviceCheck checks are skipped, since DCDevice would trap the process")
		c.Hint = "run attestd selftest from Terminal in the logged-in desktop session (or add --launchd: the agent runs in the GUI session)"
	default:
		c.set(statusPass, "the security session has graphic access")
	}
	c.fact("graphicAccess", ok && err == nil)
	return c
}

// mainLoopCheck reports whether the main thread runs its run loop and
// whether a function posted to the main dispatch queue runs.
func mainLoopCheck(ctx context.Context, env selftestEnv) stCheck {
	c := newCheck("main-run-loop")
	running, why := env.mainLoop()
	c.fact("running", running)
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	start := env.now()
	err := env.pingMainQueue(pctx)
	c.took(env.now().Sub(start))
	c.fact("mainQueueServiced", err == nil)
	switch {
	case err == nil:
		c.set(statusPass, "the main thread runs its run loop: a function posted to the main dispatch queue ran on the main thread")
	case running:
		c.set(statusFail, "the main run loop runs, yet the main queue did not: "+err.Error())
	default:
		c.set(statusFail, fmt.Sprintf("the main thread does not run its run loop (%s): a completion handler Apple posted to the main queue would never run: %v", why, err))
		c.Hint = "report this: attestd runs the main run loop for serve, bridge, doctor, selftest and probe"
	}
	return c
}

// signingKind names what signs the code, as people say it.
func signingKind(sig darwin.Signature) string {
	switch {
	case !sig.Signed:
		return "unsigned"
	case sig.AdHoc() && sig.Flags&darwin.SignatureLinkerSigned != 0:
		return "ad-hoc (linker-signed)"
	case sig.AdHoc():
		return "ad-hoc"
	case sig.TeamID != "":
		return "team " + sig.TeamID + " (Developer ID or Apple Development certificate)"
	}
	return "signed without a Team ID"
}

// hasTeam reports whether DeviceCheck can tie the code to a developer
// team: signed with a certificate that carries a Team ID.
func hasTeam(sig darwin.Signature) bool { return sig.Signed && !sig.AdHoc() && sig.TeamID != "" }

func identityCheck(env selftestEnv, sig darwin.Signature, sigErr error) stCheck {
	c := newCheck("identity")
	if sigErr != nil {
		c.set(statusFail, "read the own code signature: "+sigErr.Error())
		return c
	}
	id, err := env.identity()
	if err != nil {
		c.set(statusFail, "read the own identity: "+err.Error())
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
	c.set(statusPass, detail)
	return c
}

// bounded is the outcome of a call made by callBounded.
type bounded[T any] struct {
	v       T
	err     error
	elapsed time.Duration
	// hung is true when the call did not return in time; it keeps running
	// (an Apple call cannot be interrupted) and its results are dropped.
	hung bool
}

// callBounded runs f on its own goroutine and waits up to d, or until ctx
// ends, for it to return.
func callBounded[T any](ctx context.Context, now func() time.Time, d time.Duration, f func() (T, error)) bounded[T] {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1) // room for a late answer nobody reads
	start := now()
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case r := <-done:
		return bounded[T]{v: r.v, err: r.err, elapsed: now().Sub(start)}
	case <-t.C:
	case <-ctx.Done():
	}
	return bounded[T]{elapsed: now().Sub(start), hung: true, err: context.DeadlineExceeded}
}

func boundedSupportedCheck(ctx context.Context, env selftestEnv, gui stCheck, timeout time.Duration) stCheck {
	c := newCheck("devicecheck-supported")
	if gui.Status != statusPass {
		c.set(statusSkip, "not asked: without a GUI session DeviceCheck would trap the process")
		return c
	}
	r := callBounded(ctx, env.now, timeout, env.dcSupported)
	c.took(r.elapsed)
	c.fact("hung", r.hung)
	switch {
	case r.hung:
		c.set(statusFail, fmt.Sprintf("DCDevice.isSupported did not return within %v: it can hang; the DeviceCheck calls that follow are skipped", timeout))
		c.Hint = "report this with the macOS version; attestd would hang at start-up on this Mac"
	case r.err != nil:
		c.set(statusFail, r.err.Error())
		c.Hint = hint.Of(r.err)
	case !r.v:
		c.set(statusFail, fmt.Sprintf("DCDevice.isSupported is false (after %v)", r.elapsed.Round(time.Microsecond)))
		c.Hint = "DeviceCheck works on " + provider.MinMacOS + " or later on real Macs; virtual machines may not support it"
		c.fact("supported", false)
	default:
		c.set(statusPass, fmt.Sprintf("DCDevice.isSupported is true (answered in %v)", r.elapsed.Round(time.Microsecond)))
		c.fact("supported", true)
	}
	return c
}

// tokenChecks asks DeviceCheck for one real token and reports it and
// where Apple ran the completion handler.
func tokenChecks(ctx context.Context, env selftestEnv, sup stCheck, sig darwin.Signature, sigErr error, timeout time.Duration) (tok, where stCheck) {
	tok, where = newCheck("devicecheck-token"), newCheck("completion-queue")
	if sup.Status != statusPass {
		tok.set(statusSkip, "not asked: DeviceCheck is not available here (see devicecheck-supported)")
		where.set(statusSkip, "no token was asked for")
		return tok, where
	}
	completions := make(chan darwin.Completion, 8)
	p, err := env.newDeviceCheck(darwin.DeviceCheckOptions{Timeout: timeout, OnCompletion: func(c darwin.Completion) {
		select {
		case completions <- c:
		default:
		}
	}})
	if err != nil {
		tok.set(statusFail, err.Error())
		tok.Hint = hint.Of(err)
		where.set(statusSkip, "no token was asked for")
		return tok, where
	}
	// The provider bounds the call by timeout itself; the extra second
	// catches a provider that does not.
	r := callBounded(ctx, env.now, timeout+time.Second, func() ([]byte, error) { return p.Generate(ctx) })
	tok = judgeToken(hasTeam(sig) && sigErr == nil, signingKind(sig), r, timeout)
	var c *darwin.Completion
	select {
	case got := <-completions:
		c = &got
	default:
	}
	running, why := env.mainLoop()
	var pingErr error
	if c == nil {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		pingErr = env.pingMainQueue(pctx)
		cancel()
	}
	return tok, judgeCompletion(c, r.err, running, why, pingErr)
}

// judgeToken decides the devicecheck-token check. A helper with a Team ID
// must get a token; one without must be refused cleanly, with an NSError
// (Apple's code named), never a hang.
func judgeToken(expectToken bool, signing string, r bounded[[]byte], timeout time.Duration) stCheck {
	c := newCheck("devicecheck-token")
	c.took(r.elapsed)
	took := r.elapsed.Round(time.Millisecond)
	code, hasCode := provider.DCErrorCodeOf(r.err)
	var dc *darwin.DCError
	isDC := errors.As(r.err, &dc)
	if hasCode {
		c.fact("dcErrorCode", code)
	}
	if isDC {
		c.fact("nsErrorDomain", dc.Domain)
		c.fact("nsErrorCode", dc.Code)
		c.fact("nsErrorDescription", dc.Description)
	}
	switch {
	case r.hung || provider.ReasonOf(r.err) == provider.ReasonTimeout:
		c.set(statusFail, fmt.Sprintf("generateToken did not call its completion handler within %v (see completion-queue)", timeout))
		c.Hint = "report this with the whole report; a longer --timeout tells a slow call from a hung one"
	case r.err == nil && len(r.v) > 0:
		c.fact("tokenBytes", len(r.v))
		c.fact("fingerprint", header.Fingerprint(r.v))
		if expectToken {
			c.set(statusPass, fmt.Sprintf("a %d-byte token (fingerprint %s) in %v", len(r.v), header.Fingerprint(r.v), took))
		} else {
			c.set(statusPass, fmt.Sprintf("a %d-byte token (fingerprint %s) in %v, although this binary is %s: Apple did not require a Team ID to issue it (whether it validates is for attestd probe with a key)", len(r.v), header.Fingerprint(r.v), took, signing))
		}
	case isDC && !expectToken:
		c.set(statusPass, fmt.Sprintf("Apple refused this %s binary cleanly in %v: %s [domain %s, code %d]", signing, took, r.err, dc.Domain, dc.Code))
	case isDC:
		c.set(statusFail, fmt.Sprintf("Apple refused the token in %v: %s [domain %s, code %d]", took, r.err, dc.Domain, dc.Code))
		c.Hint = hint.Of(r.err)
	case r.err != nil:
		c.set(statusFail, fmt.Sprintf("generateToken failed in %v without an NSError: %v", took, r.err))
		c.Hint = hint.Of(r.err)
	default:
		c.set(statusFail, "generateToken returned an empty token and no error")
	}
	return c
}

// judgeCompletion decides the completion-queue check: where Apple ran the
// handler, and, when it never ran, whether the main queue could be why.
func judgeCompletion(c *darwin.Completion, tokenErr error, loopRunning bool, why string, pingErr error) stCheck {
	w := newCheck("completion-queue")
	if c == nil {
		w.fact("called", false)
		switch {
		case tokenErr == nil:
			w.set(statusFail, "a token arrived but the completion handler was not observed")
		case !loopRunning && pingErr != nil:
			w.set(statusFail, fmt.Sprintf("the completion handler never ran, and this process does not service the main queue (%s): Apple may be posting it to the main queue", why))
			w.Hint = "report this: it means DeviceCheck answers on the main queue and attestd must run the main run loop"
		case pingErr != nil:
			w.set(statusFail, "the completion handler never ran, and the main queue is not serviced: "+pingErr.Error())
		default:
			w.set(statusFail, "the completion handler never ran, though the main queue is serviced: DeviceCheck itself did not answer")
		}
		return w
	}
	w.fact("called", true)
	w.fact("mainThread", c.MainThread)
	w.fact("queue", c.Queue)
	w.fact("thread", c.Thread)
	w.fact("requestThread", c.RequestThread)
	w.fact("duringRequest", c.DuringRequest)
	w.fact("mainQueue", c.MainQueue())
	if c.MainQueue() {
		w.set(statusPass, fmt.Sprintf("MAIN QUEUE: Apple called the completion handler %v. attestd runs the main run loop, so tokens arrive; a Go process that does not would time out on every call", c))
		return w
	}
	w.set(statusPass, fmt.Sprintf("Apple called the completion handler %v: the main run loop is not needed for it", c))
	return w
}

// selfRequirement returns a code requirement the running binary
// satisfies, or "" for unsigned code, which none can admit.
func selfRequirement(sig darwin.Signature) string {
	switch {
	case !sig.Signed || sig.Identifier == "":
		return ""
	case hasTeam(sig):
		return fmt.Sprintf(`identifier %q and anchor apple generic and certificate leaf[subject.OU] = %q`, sig.Identifier, sig.TeamID)
	}
	return fmt.Sprintf(`identifier %q`, sig.Identifier)
}

// otherRequirement is a requirement the running binary does not satisfy.
const otherRequirement = `identifier "dev.attestd.selftest.no-such-peer"`

// peerRequirementCheck serves the development provider with a peer
// requirement the selftest itself satisfies, then with one it does not,
// and asks for a token as the peer each time.
func peerRequirementCheck(ctx context.Context, env selftestEnv, sig darwin.Signature, sigErr error) stCheck {
	c := newCheck("peer-requirement")
	if sigErr != nil {
		c.set(statusSkip, "the own code signature could not be read (see identity)")
		return c
	}
	var parts []string
	failed := false
	if req := selfRequirement(sig); req == "" {
		parts = append(parts, "served half skipped: this binary is unsigned, so no requirement admits it (sign it, even ad hoc with codesign -s -, to check it)")
		c.fact("served", nil)
	} else {
		c.fact("servedRequirement", req)
		chk, err := env.newPeerRequirement(req)
		if err != nil {
			failed = true
			parts = append(parts, fmt.Sprintf("requirement %s does not compile: %v", req, err))
		} else if v, err := tokenFromTempServer(ctx, env, chk); err != nil {
			failed = true
			c.fact("served", false)
			parts = append(parts, fmt.Sprintf("a peer that satisfies %s was not served: %v", req, err))
		} else {
			c.fact("served", true)
			parts = append(parts, fmt.Sprintf("a peer that satisfies %s was served (fingerprint %s)", req, header.Fingerprint(v)))
		}
	}
	c.fact("refusedRequirement", otherRequirement)
	chk, err := env.newPeerRequirement(otherRequirement)
	if err != nil {
		failed = true
		parts = append(parts, fmt.Sprintf("requirement %s does not compile: %v", otherRequirement, err))
	} else {
		_, err := tokenFromTempServer(ctx, env, chk)
		reason := provider.ReasonOf(err)
		c.fact("refusedReason", reason)
		switch {
		case err == nil:
			failed = true
			parts = append(parts, fmt.Sprintf("a peer that does not satisfy %s was served", otherRequirement))
		case reason != "peer_refused":
			failed = true
			parts = append(parts, fmt.Sprintf("a peer that does not satisfy %s failed with reason %s, want peer_refused: %v", otherRequirement, reason, err))
		default:
			parts = append(parts, "one that does not was refused with peer_refused")
		}
	}
	if failed {
		c.set(statusFail, strings.Join(parts, "; "))
	} else {
		c.set(statusPass, strings.Join(parts, "; "))
	}
	return c
}

// render writes the report for people.
func (r selftestReport) render(w io.Writer) {
	fmt.Fprintf(w, "attestd selftest (%s, attestd %s, %s)\n", r.Platform, r.Attestd, r.Go)
	width := 0
	for _, c := range r.Checks {
		width = max(width, len(c.Name))
	}
	for _, c := range r.Checks {
		took := ""
		if c.Millis != nil {
			took = fmt.Sprintf(" [%.1f ms]", *c.Millis)
		}
		fmt.Fprintf(w, "  %-7s  %-*s  %s%s\n", c.Status, width, c.Name, c.Detail, took)
		if c.Hint != "" && c.Status != statusPass {
			fmt.Fprintf(w, "  %-7s  %-*s  hint: %s\n", "", width, "", c.Hint)
		}
	}
	switch {
	case r.Failed == 1:
		fmt.Fprintf(w, "1 check failed (%d skipped)\n", r.Skipped)
	case r.Failed > 1:
		fmt.Fprintf(w, "%d checks failed (%d skipped)\n", r.Failed, r.Skipped)
	default:
		fmt.Fprintf(w, "no check failed (%d skipped)\n", r.Skipped)
	}
}
