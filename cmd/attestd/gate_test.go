package main

import (
	"strings"
	"testing"
)

// Bad settings are usage errors naming the flag (or its variable); the
// environment fills flags the command line did not give.
func TestGateUsage(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no listen", nil, []string{"--allow-dev"}, "give --listen ADDR"},
		{"no key", nil, []string{"--listen", "127.0.0.1:0"}, "--key: give --team-id, --key-id and --key"},
		{"client key without trusted proxy", nil, []string{"--listen", "127.0.0.1:0", "--allow-dev", "--client-key", "header:X-Forwarded-For"}, "--client-key: "},
		{"client key from the environment", map[string]string{"ATTESTD_CLIENT_KEY": "header:X-Forwarded-For", "ATTESTD_TRUSTED_PROXY": "10.0.0.0/8,bad"},
			[]string{"--listen", "127.0.0.1:0", "--allow-dev"}, `--trusted-proxy: bad trusted proxy range "bad"`},
		{"bad duration in the environment", map[string]string{"ATTESTD_SHUTDOWN_GRACE": "soon"}, []string{"--listen", "127.0.0.1:0"}, "ATTESTD_SHUTDOWN_GRACE"},
		{"redis mode", nil, []string{"--listen", "127.0.0.1:0", "--allow-dev", "--replay-redis", "redis://x", "--redis-mode", "ring"}, "--redis-mode: "},
		{"upstream", map[string]string{"ATTESTD_UPSTREAM": "ftp://app"}, []string{"--listen", "127.0.0.1:0", "--allow-dev"}, "--upstream: "},
		{"argument", nil, []string{"--listen", "127.0.0.1:0", "extra"}, `unexpected argument "extra"`},
		{"aa without an App ID", nil, []string{"--listen", "127.0.0.1:0", "--allow-dev", "--kinds", "aa,dev"}, "--app-id: App Attest (aa) needs"},
		{"dev without allow-dev", map[string]string{"ATTESTD_KINDS": "aa,dev", "ATTESTD_APP_ID": "T.b"}, []string{"--listen", "127.0.0.1:0"}, "--kinds: dev needs --allow-dev"},
		{"unknown kind", nil, []string{"--listen", "127.0.0.1:0", "--app-id", "T.b", "--kinds", "aa,apple"}, `--kinds: unknown kind "apple"`},
		{"App Attest environment", map[string]string{"ATTESTD_APP_ID": "T.b,U.c", "ATTESTD_APPATTEST_ENVIRONMENT": "staging"}, []string{"--listen", "127.0.0.1:0"}, "--appattest-environment: "},
		{"App Attest root", nil, []string{"--listen", "127.0.0.1:0", "--app-id", "T.b", "--appattest-root", "/nonexistent/root.pem"}, "--appattest-root: "},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, c.env, "", append([]string{"gate"}, c.args...)...)
			if code != 2 || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 2 and %q", code, stderr, c.want)
			}
		})
	}
}
