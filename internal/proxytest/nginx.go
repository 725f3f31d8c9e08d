package proxytest

import (
	"fmt"
	"path/filepath"
	"strings"
)

// StartNginx starts nginx with config's answer as the inside of its http
// block, and returns once it accepts connections on env.Addr. config must
// listen there (a server block with "listen " + env.Addr + ";"); the main
// context, the events block and the http block's pid, log and temporary
// paths are written by StartNginx, every one inside env.Dir. nginx runs as
// "nginx -g 'daemon off;'", one process, until the test ends. Without an
// nginx ($NGINX, else PATH, /usr/sbin, /usr/local/sbin) the test fails
// with a hint saying how to install it.
func StartNginx(tb TB, config func(env Env) string) *Proxy {
	tb.Helper()
	return start(tb, nginxLaunch(tb, config))
}

// nginxLaunch says how StartNginx runs nginx.
func nginxLaunch(tb TB, config func(env Env) string) launch {
	tb.Helper()
	bin, err := binary("nginx", "NGINX", "/usr/sbin", "/usr/local/sbin")
	if err != nil {
		tb.Fatal(err)
	}
	return launch{
		name: "nginx", bin: bin, file: "nginx.conf",
		render: func(env Env) string { return nginxConfig(env, config(env)) },
		args: func(dir, config string) []string {
			// -p: relative paths and the prefix stay in dir; -e: the log
			// before the configuration is read goes to stderr, not /var/log.
			return []string{"-p", dir + "/", "-c", config, "-e", "stderr", "-g", "daemon off;"}
		},
		environ: func(string) []string { return nil },
		pidFile: "nginx.pid",
		logs:    []string{"access.log"},
		port:    freePort,
	}
}

// nginxConfig wraps the http block's inside with what keeps nginx's files
// in env.Dir.
func nginxConfig(env Env, http string) string {
	path := func(name string) string { return quote(filepath.Join(env.Dir, name)) }
	return fmt.Sprintf(`# written by proxytest.StartNginx
master_process off;
pid %s;
error_log stderr notice;

events {
    worker_connections 1024;
}

http {
    access_log %s;
    client_body_temp_path %s;
    proxy_temp_path %s;
    fastcgi_temp_path %s;
    uwsgi_temp_path %s;
    scgi_temp_path %s;

%s
}
`, path("nginx.pid"), path("access.log"), path("client_body_temp"), path("proxy_temp"),
		path("fastcgi_temp"), path("uwsgi_temp"), path("scgi_temp"), http)
}

// quote makes s one nginx or Caddyfile token.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
