package diag

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/attestd/attestd/bridge/client"
	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/socket"
	"github.com/attestd/attestd/packaging/plists"
)

// selftestAgent is the temporary LaunchAgent of "attestd selftest
// --launchd": a label and socket variable of its own (with the pid), so
// it never touches an installed agent.
type selftestAgent struct {
	label, socketEnv, domain, service string
	dir, plistPath, logPath           string
}

func newSelftestAgent(env Env, dir string) selftestAgent {
	a := selftestAgent{
		label:  fmt.Sprintf("dev.attestd.selftest.%d", env.PID()),
		domain: fmt.Sprintf("gui/%d", env.UID()),
		dir:    dir,
	}
	// The label is reverse-DNS, so it always has a key of its own.
	a.socketEnv, _ = socket.KeyForLabel(a.label)
	a.service = a.domain + "/" + a.label
	a.plistPath = filepath.Join(dir, a.label+".plist")
	a.logPath = filepath.Join(dir, "agent.log")
	return a
}

// plist builds the agent's plist with the packaging's generator: this
// executable, "serve --launchd Listeners --provider devicecheck", one
// stream socket with SecureSocketWithKey, the Aqua session only.
func (a selftestAgent) plist(exe string) ([]byte, error) {
	la, err := plists.NewLaunchAgent(plists.AgentConfig{
		Label: a.label, Program: exe, Provider: "devicecheck",
		SocketName: plists.DefaultSocketName, SocketKey: a.socketEnv, LogFile: a.logPath,
	})
	if err != nil {
		return nil, err
	}
	return plists.Marshal(la)
}

// launchdAgentCheck bootstraps the temporary agent in gui/$UID, finds its
// socket, asks for a token through it (launchd starts the helper on the
// connection), and boots the agent out again, checking that it is gone.
func launchdAgentCheck(ctx context.Context, env Env, cfg SelftestConfig) Check {
	c := newCheck("launchd-agent")
	exe, err := env.Executable()
	if err != nil {
		c.set(Fail, "find this executable: "+err.Error())
		return c
	}
	if p, err := filepath.EvalSymlinks(exe); err == nil {
		exe = p
	}
	dir, err := os.MkdirTemp(cfg.TempDir, "attestd-st-agent-")
	if err != nil {
		c.set(Fail, "make a directory for the plist: "+err.Error())
		return c
	}
	defer os.RemoveAll(dir)
	a := newSelftestAgent(env, dir)
	c.fact("label", a.label)
	c.fact("program", exe)
	b, err := a.plist(exe)
	if err != nil {
		c.set(Fail, "build the plist: "+err.Error())
		return c
	}
	if err := os.WriteFile(a.plistPath, b, 0o644); err != nil {
		c.set(Fail, "write the plist: "+err.Error())
		return c
	}

	steps, failed := a.run(ctx, env, cfg, &c)
	if failed {
		if log, err := os.ReadFile(a.logPath); err == nil && len(log) > 0 {
			steps = append(steps, "agent log: "+lastLines(string(log), 5))
		}
	}
	status := Pass
	if failed {
		status = Fail
	}
	c.set(status, strings.Join(steps, "; "))
	return c
}

// run does the launchd round trip and always boots the agent out again;
// it returns what happened, step by step, and whether a step failed.
func (a selftestAgent) run(ctx context.Context, env Env, cfg SelftestConfig, c *Check) (steps []string, failed bool) {
	out, err := env.Launchctl(ctx, "bootstrap", a.domain, a.plistPath)
	if err != nil {
		c.Hint = "gui/$UID exists only for a user logged in at the desktop; over SSH log in at the Mac first"
		return []string{fmt.Sprintf("launchctl bootstrap %s %s: %v: %s", a.domain, a.plistPath, err, strings.TrimSpace(string(out)))}, true
	}
	steps = append(steps, "bootstrapped "+a.service)
	defer func() {
		// Boot out with a context of its own: the agent must go even
		// when ctx has ended.
		bctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		byHand := "remove it by hand: launchctl bootout " + a.service
		if out, err := env.Launchctl(bctx, "bootout", a.service); err != nil {
			failed = true
			steps = append(steps, fmt.Sprintf("launchctl bootout %s: %v: %s", a.service, err, strings.TrimSpace(string(out))))
			c.Hint = byHand
			return
		}
		if _, err := env.Launchctl(bctx, "print", a.service); err == nil {
			failed = true
			steps = append(steps, a.service+" is still loaded after bootout")
			c.Hint = byHand
			return
		}
		steps = append(steps, "booted out (launchctl print no longer finds it)")
		c.fact("bootedOut", true)
	}()

	tctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	path, how, err := a.socketPath(tctx, env, cfg.PollEvery)
	if err != nil {
		return append(steps, err.Error()), true
	}
	c.fact("socket", path)
	steps = append(steps, fmt.Sprintf("socket %s (from %s)", path, how))

	// The helper serves with its defaults: a cold pool answers "timeout"
	// within its 80 ms deadline while it makes the first token, so ask
	// again until one comes, as "attestd token" does.
	start := env.Now()
	cl := client.New(path)
	value, err := cl.WaitToken(tctx)
	cl.Close()
	c.took(env.Now().Sub(start))
	if out, perr := env.Launchctl(ctx, "print", a.service); perr == nil {
		if pid, ok := launchctlPID(string(out)); ok {
			c.fact("pid", pid)
			steps = append(steps, fmt.Sprintf("launchd started the helper (pid %d)", pid))
		}
	}
	switch reason := provider.ReasonOf(err); {
	case err == nil:
		v, derr := header.Decode(value)
		if derr != nil {
			return append(steps, "the agent answered with a value that does not decode: "+derr.Error()), true
		}
		c.fact("kind", v.Kind)
		c.fact("fingerprint", header.Fingerprint(value))
		steps = append(steps, fmt.Sprintf("a %s token came back through launchd (fingerprint %s)", v.Kind, header.Fingerprint(value)))
	case reason == provider.ReasonDaemonUnreachable:
		return append(steps, "no answer through the socket: "+err.Error()), true
	case reason == provider.ReasonTimeout || errors.Is(err, context.DeadlineExceeded):
		return append(steps, fmt.Sprintf("no token through the socket within %v: %v", cfg.Timeout, err)), true
	default:
		// The helper ran under launchd and answered; DeviceCheck refused
		// (an unsigned helper, say). The launchd path works.
		c.fact("answerReason", reason)
		if code, ok := provider.DCErrorCodeOf(err); ok {
			c.fact("dcErrorCode", code)
		}
		steps = append(steps, fmt.Sprintf("the helper answered through launchd with an error (reason %s): %v", reason, err))
	}
	return steps, false
}

// socketPath finds where launchd made the agent's socket: the variable
// named by SecureSocketWithKey in the user's launchd environment
// (launchctl getenv), else the path launchctl print shows, polling until
// ctx ends while the agent loads.
func (a selftestAgent) socketPath(ctx context.Context, env Env, every time.Duration) (path, how string, err error) {
	if every <= 0 {
		every = 100 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if out, err := env.Launchctl(ctx, "getenv", a.socketEnv); err == nil {
			if p := strings.TrimSpace(string(out)); p != "" {
				return p, "launchctl getenv " + a.socketEnv, nil
			}
		}
		if out, err := env.Launchctl(ctx, "print", a.service); err == nil {
			if p, ok := launchctlSocketPath(string(out)); ok {
				return p, "launchctl print " + a.service, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", "", fmt.Errorf("launchd exported no socket path in $%s, and launchctl print %s shows none: %w", a.socketEnv, a.service, ctx.Err())
		case <-t.C:
		}
	}
}

var (
	launchctlPIDRE  = regexp.MustCompile(`(?m)^\s*pid = (\d+)\s*$`)
	launchctlPathRE = regexp.MustCompile(`(?m)^\s*path = (/\S+)\s*$`)
)

// launchctlPID reads "pid = N" from launchctl print output.
func launchctlPID(out string) (int, bool) {
	m := launchctlPIDRE.FindStringSubmatch(out)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	return n, err == nil
}

// launchctlSocketPath reads the first "path = /…" of the sockets section
// of launchctl print output (the job's own "path" is its plist).
func launchctlSocketPath(out string) (string, bool) {
	i := strings.Index(out, "sockets = {")
	if i < 0 {
		return "", false
	}
	m := launchctlPathRE.FindStringSubmatch(out[i:])
	if m == nil {
		return "", false
	}
	return m[1], true
}

// lastLines returns the last n lines of s, joined by " | ".
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
