package diag

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/bridge/protocol"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/socket"
)

// socketCheck looks at the daemon's socket path: a Unix socket owned by
// this user, private to it, in a private directory, with a daemon answering.
func socketCheck(env Env, path string) Check {
	c := newCheck("socket")
	if path == "" {
		c.set(Skipped, "no socket path")
		return c
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		c.set(Skipped, fmt.Sprintf("no socket at %s: the daemon is not running there", path))
		c.Hint = "start it with \"attestd serve\" or load the LaunchAgent; name the helper with --agent LABEL, or give --socket PATH if it listens elsewhere"
		return c
	}
	if err != nil {
		c.set(Fail, err.Error())
		return c
	}
	if fi.Mode().Type() != fs.ModeSocket {
		c.set(Fail, fmt.Sprintf("%s is not a socket (%v)", path, fi.Mode()))
		c.Hint = "remove it, or point $" + socket.EnvVar + " at the daemon's socket"
		return c
	}
	if problem := privateProblem(fi, env.UID()); problem != "" {
		c.set(Fail, fmt.Sprintf("socket %s: %s", path, problem))
		c.Hint = "restart the daemon so it recreates the socket with mode 0600 (launchd: SockPathMode 384)"
		return c
	}
	dir := filepath.Dir(path)
	if di, err := os.Stat(dir); err != nil {
		c.set(Fail, err.Error())
		return c
	} else if problem := privateProblem(di, env.UID()); problem != "" {
		c.set(Fail, fmt.Sprintf("directory %s: %s", dir, problem))
		c.Hint = fmt.Sprintf("chmod 700 %s", dir)
		return c
	}
	if !socket.Alive(path) {
		c.set(Skipped, fmt.Sprintf("%s (mode %#o) exists but nobody answers on it (a stale socket)", path, fi.Mode().Perm()))
		c.Hint = "start the daemon; it replaces the stale socket"
		return c
	}
	c.set(Pass, fmt.Sprintf("%s (mode %#o), a daemon answers", path, fi.Mode().Perm()))
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
func daemonCheck(ctx context.Context, env Env, path string, sock Check) Check {
	c := newCheck("daemon")
	if sock.Status != Pass {
		c.set(Skipped, "no daemon answers on the socket")
		return c
	}
	st, err := env.DaemonStatus(ctx, path)
	if err != nil {
		c.set(Fail, "attestation/status: "+err.Error())
		c.Hint = hint.Of(err)
		return c
	}
	c.Detail = fmt.Sprintf("attestd %s, provider %s, %d of %d tokens ready, %d served",
		st.Version, st.Provider, st.Pool.Ready, st.Pool.Capacity, st.Pool.Counters.Served)
	if e := st.Pool.LastError; e != nil {
		c.Detail += fmt.Sprintf("; last error (%s): %s", e.Reason, e.Message)
		if hint := cannotStartHint(e.Reason); hint != "" && st.Pool.ConsecutiveFailures > 0 {
			// The daemon serves, but its provider cannot make tokens.
			c.Status, c.Hint = Fail, hint
			return c
		}
	}
	if aa := st.Pool.AppAttest; aa != nil {
		c.Detail += "; " + appAttestDetail(*aa)
	}
	if env.Native() && st.Provider != header.KindDeviceCheck && st.Provider != "appattest" {
		c.Status = Fail
		c.Detail += ": the daemon does not serve DeviceCheck tokens"
		c.Hint = "restart it with --provider devicecheck, appattest or auto; development tokens and simulated App Attest are never valid in production"
		return c
	}
	c.Status = Pass
	return c
}

// cannotStartHint says what to do about a daemon whose provider fails for
// a reason no retry of a generation can cure, or "" for other reasons.
func cannotStartHint(reason string) string {
	switch reason {
	case provider.ReasonUnsupported:
		return provider.DeviceCheckNeedsMacOS + "; on other systems run the daemon with --provider dev"
	case provider.ReasonNoGUISession:
		return provider.NoGUISessionHint
	}
	return ""
}

// logCheck says where the agent's log is, and whether it has one yet.
func logCheck(cfg DoctorConfig) Check {
	c := newCheck("log")
	switch fi, err := os.Stat(cfg.LogFile); {
	case cfg.LogFile == "":
		c.set(Skipped, "the agent was named by its socket key, so its log's name (LABEL.log) is unknown")
		c.Hint = "name it by its label: attestd doctor --agent LABEL; logs are in ~/Library/Logs/LABEL.log"
	case err != nil:
		c.set(Skipped, fmt.Sprintf("no log yet at %s: the agent %s has not run since it was installed", cfg.LogFile, cfg.AgentLabel))
		c.Hint = "the agent starts when a client connects: attestd token --agent " + cfg.AgentLabel
	default:
		c.set(Pass, fmt.Sprintf("the agent %s logs to %s (%d bytes, last written %s); fatal crashes to %s",
			cfg.AgentLabel, cfg.LogFile, fi.Size(), fi.ModTime().Format(time.RFC3339), cfg.CrashFile))
	}
	return c
}

// appAttestDetail says where the App Attest provider is: registered (its
// key, the kind it last served), or why it answers with DeviceCheck.
func appAttestDetail(aa protocol.AppAttestStatus) string {
	s := "App Attest " + aa.State
	if aa.Registered {
		s += fmt.Sprintf(" (key %s, %s, with %s)", aa.KeyID, aa.Environment, aa.Server)
	} else {
		s += fmt.Sprintf(" (%s answers until the key is registered with %s)", aa.Fallback, aa.Server)
	}
	if e := aa.LastError; e != nil && !aa.Registered {
		s += fmt.Sprintf(": last error (%s): %s", e.Reason, e.Message)
	}
	return s
}
