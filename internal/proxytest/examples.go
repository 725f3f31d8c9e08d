package proxytest

import (
	"embed"
	"strings"
	"text/template"
)

//go:embed testdata/nginx-auth-request.conf testdata/caddy-forward-auth.Caddyfile
var examples embed.FS

// NginxAuthRequest returns testdata/nginx-auth-request.conf filled in for
// StartNginx: nginx in front of upstream, asking the auth server at gate
// (both host:port) through auth_request.
func NginxAuthRequest(gate, upstream string) func(Env) string {
	return example("nginx-auth-request.conf", gate, upstream)
}

// CaddyForwardAuth returns testdata/caddy-forward-auth.Caddyfile filled in
// for StartCaddy: Caddy in front of upstream, asking the auth server at
// gate (both host:port) through forward_auth.
func CaddyForwardAuth(gate, upstream string) func(Env) string {
	return example("caddy-forward-auth.Caddyfile", gate, upstream)
}

// example fills in the named configuration's template fields: .Listen,
// .Port, .Gate and .Upstream.
func example(name, gate, upstream string) func(Env) string {
	tmpl := template.Must(template.ParseFS(examples, "testdata/"+name))
	return func(env Env) string {
		var b strings.Builder
		if err := tmpl.Execute(&b, map[string]any{"Listen": env.Addr, "Port": env.Port, "Gate": gate, "Upstream": upstream}); err != nil {
			panic("proxytest: " + name + ": " + err.Error()) // the file is the package's own
		}
		return b.String()
	}
}
