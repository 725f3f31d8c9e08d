package diag

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/pool"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/server"
	"github.com/attestd/attestd/packaging/plists"
)

// fakeLaunchd plays launchd for the selftest's launchctl seam: bootstrap
// reads the plist and, as launchd does for SecureSocketWithKey, makes a
// socket in a private directory, exports its path, and serves it with a
// helper (here an in-process server); bootout stops it. Real sockets,
// real server and client.
type fakeLaunchd struct {
	t        *testing.T
	provider provider.Provider
	// deadline is the helper's --deadline; zero means a generous 5 s.
	deadline time.Duration

	// Faults.
	failBootstrap bool
	noGetenv      bool // export the path only through print
	noSocket      bool // export nothing
	stuck         bool // bootout "succeeds" but the job stays

	mu      sync.Mutex
	loaded  map[string]*fakeJob // service -> job
	env     map[string]string
	calls   []string
	plist   map[string]any
	bootout int
}

type fakeJob struct {
	path   string
	stop   func()
	plistP string
}

func newFakeLaunchd(t *testing.T) *fakeLaunchd {
	f := &fakeLaunchd{t: t, provider: provider.Dev{}, loaded: map[string]*fakeJob{}, env: map[string]string{}}
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, j := range f.loaded {
			j.stop()
		}
	})
	return f
}

func (f *fakeLaunchd) launchctl(ctx context.Context, args ...string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, args[0])
	switch args[0] {
	case "bootstrap":
		return f.bootstrap(args[1], args[2])
	case "bootout":
		f.bootout++
		j, ok := f.loaded[args[1]]
		if !ok {
			return []byte("Boot-out failed: 3: No such process"), errors.New("exit status 3")
		}
		if !f.stuck {
			j.stop()
			delete(f.loaded, args[1])
		}
		return nil, nil
	case "print":
		j, ok := f.loaded[args[1]]
		if !ok {
			return []byte("Could not find service"), errors.New("exit status 113")
		}
		out := fmt.Sprintf("%s = {\n\tpath = %s\n\tstate = running\n\tpid = 4242\n", args[1], j.plistP)
		if !f.noSocket {
			out += fmt.Sprintf("\tsockets = {\n\t\t\"Listeners\" = {\n\t\t\tpath = %s\n\t\t}\n\t}\n", j.path)
		}
		return []byte(out + "}\n"), nil
	case "getenv":
		if f.noGetenv || f.noSocket {
			return nil, nil // launchctl getenv prints nothing for an unset variable
		}
		return []byte(f.env[args[1]] + "\n"), nil
	}
	f.t.Errorf("unexpected launchctl %q", args)
	return nil, errors.New("unknown subcommand")
}

func (f *fakeLaunchd) bootstrap(domain, plistPath string) ([]byte, error) {
	if f.failBootstrap {
		return []byte("Bootstrap failed: 125: Domain does not support specified action"), errors.New("exit status 125")
	}
	if domain != fmt.Sprintf("gui/%d", os.Getuid()) {
		f.t.Errorf("bootstrap into %q, want gui/$UID", domain)
	}
	b, err := os.ReadFile(plistPath)
	if err != nil {
		return nil, err
	}
	d, err := plists.Dict(b)
	if err != nil {
		return []byte("malformed plist"), err
	}
	f.plist = d
	label, _ := d["Label"].(string)
	socks, _ := d["Sockets"].(map[string]any)
	listeners, _ := socks[plists.DefaultSocketName].(map[string]any)
	key, _ := listeners["SecureSocketWithKey"].(string)
	if key == "" {
		f.t.Errorf("plist has no Sockets.Listeners.SecureSocketWithKey: %v", d)
	}
	dir, err := os.MkdirTemp("", "launchd-")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, plists.DefaultSocketName)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p := pool.New(pool.Config{Provider: f.provider, Size: 1})
	deadline := f.deadline
	if deadline == 0 {
		deadline = 5 * time.Second
	}
	srv := server.New(server.Config{Tokens: p, Deadline: deadline})
	served := make(chan struct{})
	go func() { srv.Serve(l); close(served) }()
	f.env[key] = path
	f.loaded[domain+"/"+label] = &fakeJob{path: path, plistP: plistPath, stop: func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
		p.Close()
		os.RemoveAll(dir)
		delete(f.env, key)
	}}
	return nil, nil
}

func launchdEnv(t *testing.T, f *fakeLaunchd) *fakeEnv {
	env := newSelftestMac().env(t)
	env.launchctl = f.launchctl
	return env
}

// launchdConfig is the selftest's configuration for the launchd check:
// its own temporary directory, launchctl asked every millisecond.
func launchdConfig(t *testing.T, timeout time.Duration) SelftestConfig {
	return SelftestConfig{Timeout: timeout, Launchd: true, TempDir: t.TempDir(), PollEvery: time.Millisecond}
}

func TestLaunchdAgentCheck(t *testing.T) {
	t.Parallel()
	refusing := provider.Func{K: "dc", F: func(context.Context) ([]byte, error) {
		return nil, &provider.Error{Reason: provider.ReasonProviderError, Msg: "DeviceCheck: invalidKey", DCCode: 3, HasDCCode: true}
	}}
	tests := []struct {
		name      string
		fault     func(f *fakeLaunchd)
		timeout   time.Duration
		status    Status
		contains  []string
		bootouts  int
		hint      string
		wantFacts map[string]any
	}{
		{name: "token through launchd", status: Pass, bootouts: 1,
			contains:  []string{"bootstrapped gui/", "from launchctl getenv ATTESTD_SOCKET_dev_attestd_selftest_", "launchd started the helper (pid 4242)", "a dev token came back through launchd", "booted out"},
			wantFacts: map[string]any{"bootedOut": true, "kind": "dev", "pid": 4242}},
		// The agent runs "serve" with its defaults: a cold pool cannot
		// make DeviceCheck's first token within the 80 ms deadline, and
		// the first request only warms it. A token still comes back.
		{name: "cold helper at the daemon's deadline", fault: func(f *fakeLaunchd) {
			f.provider, f.deadline = provider.Dev{Latency: 300 * time.Millisecond}, server.DefaultDeadline
		}, status: Pass, bootouts: 1,
			contains:  []string{"a dev token came back through launchd", "booted out"},
			wantFacts: map[string]any{"kind": "dev"}},
		{name: "helper never makes a token", fault: func(f *fakeLaunchd) {
			f.provider, f.deadline = provider.Dev{Latency: time.Hour}, server.DefaultDeadline
		}, timeout: 500 * time.Millisecond, status: Fail, bootouts: 1,
			contains: []string{"no token through the socket within", "booted out"}},
		{name: "socket found with print", fault: func(f *fakeLaunchd) { f.noGetenv = true }, status: Pass, bootouts: 1,
			contains: []string{"(from launchctl print gui/"}},
		{name: "helper answers with DeviceCheck's refusal", fault: func(f *fakeLaunchd) { f.provider = refusing }, status: Pass, bootouts: 1,
			contains:  []string{"answered through launchd with an error (reason provider_error)"},
			wantFacts: map[string]any{"dcErrorCode": 3}},
		{name: "bootstrap fails", fault: func(f *fakeLaunchd) { f.failBootstrap = true }, status: Fail, bootouts: 0,
			contains: []string{"launchctl bootstrap gui/", "Domain does not support"}, hint: "logged in at the desktop"},
		{name: "no socket exported", fault: func(f *fakeLaunchd) { f.noSocket = true }, timeout: 50 * time.Millisecond,
			status: Fail, bootouts: 1, contains: []string{"launchd exported no socket path", "booted out"}},
		{name: "agent stays loaded", fault: func(f *fakeLaunchd) { f.stuck = true }, status: Fail, bootouts: 1,
			contains: []string{"still loaded after bootout"}, hint: "launchctl bootout gui/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeLaunchd(t)
			if tt.fault != nil {
				tt.fault(f)
			}
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 10 * time.Second
			}
			env, cfg := launchdEnv(t, f), launchdConfig(t, timeout)
			c := launchdAgentCheck(context.Background(), env, cfg)
			if c.Status != tt.status {
				t.Errorf("status %s, want %s: %s", c.Status, tt.status, c.Detail)
			}
			for _, s := range tt.contains {
				if !strings.Contains(c.Detail, s) {
					t.Errorf("detail %q, want %q in it", c.Detail, s)
				}
			}
			if !strings.Contains(c.Hint, tt.hint) {
				t.Errorf("hint %q, want %q", c.Hint, tt.hint)
			}
			f.mu.Lock()
			bootouts, calls, plist := f.bootout, slices.Clone(f.calls), f.plist
			f.mu.Unlock()
			if bootouts != tt.bootouts {
				t.Errorf("%d bootouts, want %d (calls %q)", bootouts, tt.bootouts, calls)
			}
			for k, v := range tt.wantFacts {
				if c.Facts[k] != v {
					t.Errorf("fact %s = %v, want %v", k, c.Facts[k], v)
				}
			}
			if plist != nil {
				if plist["LimitLoadToSessionType"] != plists.SessionAqua {
					t.Errorf("plist LimitLoadToSessionType = %v", plist["LimitLoadToSessionType"])
				}
				args, _ := plist["ProgramArguments"].([]any)
				if len(args) < 4 || args[1] != "serve" || args[2] != "--launchd" || args[3] != plists.DefaultSocketName {
					t.Errorf("ProgramArguments = %v, want PROGRAM serve --launchd Listeners …", args)
				}
				if plist["Program"] != "/Applications/Host.app/Contents/Helpers/Attestd.app/Contents/MacOS/attestd" {
					t.Errorf("Program = %v, want this executable", plist["Program"])
				}
			}
			// The temporary plist and its directory are gone.
			if m, _ := filepath.Glob(filepath.Join(cfg.TempDir, "attestd-st-agent-*")); len(m) != 0 {
				t.Errorf("left behind %q", m)
			}
		})
	}
}

// TestSelftestLaunchdFlag runs the whole selftest with --launchd on the
// fake Mac and its fake launchd.
func TestSelftestLaunchdFlag(t *testing.T) {
	t.Parallel()
	f := newFakeLaunchd(t)
	r := Selftest(context.Background(), launchdEnv(t, f), launchdConfig(t, 10*time.Second))
	if c := mustFind(t, r, "launchd-agent"); c.Status != Pass {
		t.Errorf("launchd-agent = %s: %s", c.Status, c.Detail)
	}
	if !r.OK {
		t.Errorf("selftest --launchd failed: %v", statuses(r))
	}
}
