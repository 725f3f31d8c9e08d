package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attestd/attestd/verify/appattest/devattest"
)

// TestAppAttestCommand: the command's exit statuses and JSON; the engine's
// own tests (internal/appattestcli) cover each check.
func TestAppAttestCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, err := devattest.NewKey("TEAMID1234.com.example.app")
	if err != nil {
		t.Fatal(err)
	}
	cdh := sha256.Sum256([]byte("challenge"))
	att, err := key.Attest(cdh[:])
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(root, devattest.RootPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString
	// A key id whose base64url (X-Attestd-Key-Id's) starts with "-".
	dashID := base64.RawURLEncoding.EncodeToString(append([]byte{0xf8}, make([]byte, 31)...))
	args := []string{"appattest", "attestation", "--app-id", "TEAMID1234.com.example.app", "--root", root, "-"}
	for _, tt := range []struct {
		name   string
		env    map[string]string
		args   []string
		code   int
		stdout string // a JSON member
		stderr string
	}{
		{"valid", nil, append(args, "--client-data-hash", b64(cdh[:])), 0, `"environment": "development"`, ""},
		{"another challenge", nil, append(args, "--client-data-hash", b64(make([]byte, 32))), 1, `"reason": "bad_nonce"`, "attestd: hint: the attestation was made for another clientDataHash"},
		{"no client data", nil, args, 2, "", "give one of --client-data-hash"},
		{"no subcommand", nil, []string{"appattest"}, 2, "", "want attestation, assertion or keys"},
		{"an unknown subcommand", nil, []string{"appattest", "attest"}, 2, "", "unknown subcommand"},
		{"keys, Redis down, from the environment", map[string]string{"ATTESTD_REPLAY_REDIS": "redis://127.0.0.1:1"}, []string{"appattest", "keys", "list", "--timeout", "2s"}, 4, `"reason": "key_store"`, "127.0.0.1:1"},
		{"keys without a store", nil, []string{"appattest", "keys", "list"}, 2, "", "--replay-redis"},
		{"a key id that starts with -", nil, []string{"appattest", "keys", "revoke", dashID, "--replay-redis", "redis://127.0.0.1:1", "--timeout", "2s"}, 4, `"reason": "key_store"`, "127.0.0.1:1"},
		{"a flag that is no key id", nil, []string{"appattest", "keys", "revoke", "-no-such-flag", "--replay-redis", "redis://127.0.0.1:1"}, 2, "", "flag provided but not defined"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tt.env, b64(att), tt.args...)
			if code != tt.code || !strings.Contains(out, tt.stdout) || !strings.Contains(errOut, tt.stderr) {
				t.Fatalf("exit %d, stdout %s, stderr %s; want %d, %q, %q", code, out, errOut, tt.code, tt.stdout, tt.stderr)
			}
			if out != "" && !json.Valid([]byte(out)) {
				t.Errorf("stdout is not JSON: %s", out)
			}
		})
	}
}
