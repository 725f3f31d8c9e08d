package proxytest

import (
	"fmt"
	"path/filepath"
)

// StartCaddy starts Caddy with config's answer as the site blocks of its
// Caddyfile, and returns once it accepts connections on env.Addr. config
// must serve there (a site address "http://:" + env.Port; by default_bind
// every listener binds 127.0.0.1 alone). The global options block is
// written by StartCaddy: no admin endpoint, no automatic HTTPS, no trust
// store changes, storage in env.Dir, a 2 s grace period at stop, the log
// on stderr. Caddy's home, config and data directories ($HOME,
// $XDG_CONFIG_HOME, $XDG_DATA_HOME, where it autosaves) are in env.Dir too.
// Caddy runs as "caddy run" until the test ends. Without a caddy ($CADDY,
// else PATH) the test fails with a hint saying how to install it.
func StartCaddy(tb TB, config func(env Env) string) *Proxy {
	tb.Helper()
	return start(tb, caddyLaunch(tb, config))
}

// caddyLaunch says how StartCaddy runs Caddy.
func caddyLaunch(tb TB, config func(env Env) string) launch {
	tb.Helper()
	bin, err := binary("caddy", "CADDY")
	if err != nil {
		tb.Fatal(err)
	}
	return launch{
		name: "caddy", bin: bin, file: "Caddyfile",
		render: func(env Env) string { return caddyConfig(env, config(env)) },
		args: func(dir, config string) []string {
			return []string{"run", "--config", config, "--adapter", "caddyfile",
				"--pidfile", filepath.Join(dir, "caddy.pid")}
		},
		environ: func(dir string) []string {
			return []string{
				"HOME=" + filepath.Join(dir, "home"),
				"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"),
				"XDG_DATA_HOME=" + filepath.Join(dir, "data"),
			}
		},
		pidFile: "caddy.pid",
		port:    freePort,
	}
}

// caddyConfig puts the global options that keep Caddy on loopback, off
// fixed ports and inside env.Dir before the site blocks.
func caddyConfig(env Env, sites string) string {
	return fmt.Sprintf(`# written by proxytest.StartCaddy
{
	admin off
	auto_https off
	default_bind 127.0.0.1
	skip_install_trust
	grace_period 2s
	storage file_system %s
	log {
		output stderr
	}
}

%s
`, quote(filepath.Join(env.Dir, "storage")), sites)
}
