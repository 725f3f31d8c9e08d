package socket

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// One host, one socket variable. A LaunchAgent socket with
// SecureSocketWithKey is published in the whole user session's launchd
// environment under the key's name, so every host that embeds attestd
// needs its own key. KeyForLabel derives it from the agent's launchd label:
//
//	ATTESTD_SOCKET_ + the label with each "." written as "_" and each "-" as "__"
//
// com.example.Host.attestd gives ATTESTD_SOCKET_com_example_Host_attestd;
// com.example-corp.app gives ATTESTD_SOCKET_com_example__corp_app. The
// label must be reverse-DNS (letters and digits, joined by single "." or
// "-"), which makes the rule one-to-one: two different labels never get the
// same key. A host may choose its own key instead (make SOCKET_KEY=…).

// KeyPrefix starts every derived socket key.
const KeyPrefix = EnvVar + "_"

// DefaultLabel is the LaunchAgent label of development builds (make
// bundle, attestd agent install), and the agent clients look for when none
// is named.
const DefaultLabel = "dev.attestd.agent"

// ErrBadAgent reports a label or key that names no agent.
var ErrBadAgent = errors.New("bad agent name")

var (
	labelRE = regexp.MustCompile(`^[A-Za-z0-9]+(?:[.-][A-Za-z0-9]+)*$`)
	keyRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// KeyForLabel returns the socket key (environment variable name) for the
// LaunchAgent label, by the rule above.
func KeyForLabel(label string) (string, error) {
	if !labelRE.MatchString(label) {
		return "", fmt.Errorf("%w: label %q is not reverse-DNS (letters and digits joined by single '.' or '-'), so no socket key can be derived from it; choose the key yourself (make SOCKET_KEY=ATTESTD_SOCKET_…)", ErrBadAgent, label)
	}
	return KeyPrefix + strings.NewReplacer(".", "_", "-", "__").Replace(label), nil
}

// CheckKey reports whether key can be a socket key: an environment
// variable name other than the shared manual override $ATTESTD_SOCKET,
// which every host would collide on.
func CheckKey(key string) error {
	if !keyRE.MatchString(key) {
		return fmt.Errorf("%w: socket key %q is not an environment variable name (letters, digits and '_')", ErrBadAgent, key)
	}
	if key == EnvVar {
		return fmt.Errorf("%w: socket key %s is the shared manual override; every host using it would get the others' tokens", ErrBadAgent, EnvVar)
	}
	return nil
}

// IsLabel reports whether agent names a LaunchAgent by its label rather
// than by its socket key: a label contains a ".", which no environment
// variable name does.
func IsLabel(agent string) bool { return strings.Contains(agent, ".") }

// AgentKey returns the socket key for agent, which is either a LaunchAgent
// label (see IsLabel) or a socket key itself.
func AgentKey(agent string) (string, error) {
	if IsLabel(agent) {
		return KeyForLabel(agent)
	}
	if err := CheckKey(agent); err != nil {
		return "", err
	}
	return agent, nil
}

// Lookup says which helper a client wants.
type Lookup struct {
	// Path, when set, is the socket (--socket); nothing is looked up.
	Path string
	// Agent names the helper: its LaunchAgent label or its socket key.
	// Empty means DefaultLabel, and then $ATTESTD_SOCKET is honoured too.
	Agent string
	// Getenv reads this process's environment; nil means os.Getenv.
	Getenv func(string) string
}

// Source says where Resolve found the socket.
type Source string

// The sources, in the order Resolve tries them.
const (
	SourceFlag     Source = "flag"        // Lookup.Path
	SourceOverride Source = "override"    // $ATTESTD_SOCKET, when no agent is named
	SourceEnv      Source = "environment" // $KEY in this process's environment
	SourceLaunchd  Source = "launchd"     // launchctl getenv KEY (macOS)
	SourceDefault  Source = "default"     // the per-user runtime path
)

// Found is where Resolve found the socket, and why there.
type Found struct {
	Path   string
	Source Source
	// Key is the socket variable consulted ("" with SourceFlag).
	Key string
	// LaunchdErr says why the launchd lookup gave nothing, when it was
	// tried and failed (not when the variable was merely unset).
	LaunchdErr error
}

func (f Found) String() string {
	switch f.Source {
	case SourceFlag:
		return f.Path + " (--socket)"
	case SourceOverride:
		return f.Path + " ($" + EnvVar + ")"
	case SourceEnv:
		return f.Path + " ($" + f.Key + ")"
	case SourceLaunchd:
		return f.Path + " (launchctl getenv " + f.Key + ")"
	}
	return f.Path + " (the default path; $" + f.Key + " is not set)"
}

// LaunchdTimeout bounds one launchd lookup.
const LaunchdTimeout = 3 * time.Second

// launchdGetenv reads a variable from the user's launchd environment
// ("launchctl getenv KEY"): "" when it is not set. It is set in
// resolve_darwin.go; nil elsewhere. Tests replace it.
var launchdGetenv func(ctx context.Context, key string) (string, error)

// Resolve finds the socket of the helper l names, so that a host finds
// its helper on the first launch after registering it, without a relaunch:
//
//  1. l.Path (--socket), when set;
//  2. $ATTESTD_SOCKET, only when l names no agent (a daemon you started
//     yourself);
//  3. $KEY, the agent's socket variable, in this process's environment:
//     launchd exports it to every process started after the agent loaded;
//  4. on macOS, the user's launchd environment (launchctl getenv KEY): the
//     agent registered after this process started;
//  5. the per-user default path (DefaultPath without $ATTESTD_SOCKET).
//
// Only a bad agent name is an error; a failed launchd lookup falls through
// to the default path and is reported in Found.LaunchdErr.
func Resolve(ctx context.Context, l Lookup) (Found, error) {
	if l.Path != "" {
		return Found{Path: l.Path, Source: SourceFlag}, nil
	}
	getenv := l.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	agent := l.Agent
	if agent == "" {
		if p := getenv(EnvVar); p != "" {
			return Found{Path: p, Source: SourceOverride, Key: EnvVar}, nil
		}
		agent = DefaultLabel
	}
	key, err := AgentKey(agent)
	if err != nil {
		return Found{}, err
	}
	if p := getenv(key); p != "" {
		return Found{Path: p, Source: SourceEnv, Key: key}, nil
	}
	f := Found{Source: SourceDefault, Key: key}
	if lookup := launchdGetenv; lookup != nil {
		lctx, cancel := context.WithTimeout(ctx, LaunchdTimeout)
		p, err := lookup(lctx, key)
		cancel()
		switch {
		case err != nil:
			f.LaunchdErr = err
		case p != "":
			f.Path, f.Source = p, SourceLaunchd
			return f, nil
		}
	}
	f.Path = DefaultPath(func(k string) string {
		if k == EnvVar {
			return ""
		}
		return getenv(k)
	})
	return f, nil
}

// launchctlPath is the tool that reads the user's launchd environment.
// There is no supported libSystem call for it (launch_msg and its
// LAUNCH_KEY_GETUSERENVIRONMENT are deprecated and undocumented), so the
// lookup runs Apple's own command, by absolute path. Tests point it at a
// stand-in.
var launchctlPath = "/bin/launchctl"

// launchctlGetenv runs "launchctl getenv KEY", which prints the value and a
// newline, or nothing (exit 0) when the variable is not set.
func launchctlGetenv(ctx context.Context, key string) (string, error) {
	out, err := exec.CommandContext(ctx, launchctlPath, "getenv", key).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			return "", fmt.Errorf("launchctl getenv %s: %v: %s", key, err, strings.TrimSpace(string(ee.Stderr)))
		}
		return "", fmt.Errorf("launchctl getenv %s: %w", key, err)
	}
	return strings.TrimRight(string(out), "\n"), nil
}
