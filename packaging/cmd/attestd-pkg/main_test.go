package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	_, rcodesignErr := exec.LookPath("rcodesign")
	noSigner := runtime.GOOS != "darwin" && rcodesignErr != nil
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		want   string // in stdout+stderr
		onlyIf bool
	}{
		{name: "no command", args: nil, code: 2, want: "usage: attestd-pkg", onlyIf: true},
		{name: "help", args: []string{"help"}, code: 0, want: "verify", onlyIf: true},
		{name: "unknown", args: []string{"frob"}, code: 2, want: `unknown command "frob"`, onlyIf: true},
		{name: "bad flag", args: []string{"bundle", "-nope"}, code: 2, want: "flag provided but not defined", onlyIf: true},
		{name: "stray argument", args: []string{"bundle", "x"}, code: 2, want: "unexpected arguments", onlyIf: true},
		{name: "fat of one", args: []string{"fat", "-o", filepath.Join(dir, "a"), filepath.Join(dir, "b")}, code: 1, want: "two or more", onlyIf: true},
		{name: "verify nothing", args: []string{"verify", "-bundle", filepath.Join(dir, "Attestd.app"), "-agent", filepath.Join(dir, "x.plist")},
			code: 1, want: "FAIL Info.plist [info-plist]", onlyIf: true},
		{name: "sign without a tool", args: []string{"sign"}, code: 1, want: "install rcodesign", onlyIf: noSigner},
		{name: "notarize without a tool", args: []string{"notarize"}, code: 1, want: "install rcodesign", onlyIf: noSigner},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.onlyIf {
				t.Skip("depends on the signing tools installed here")
			}
			var out, errb strings.Builder
			code := run(context.Background(), &out, &errb, tc.args)
			all := out.String() + errb.String()
			if code != tc.code || !strings.Contains(all, tc.want) {
				t.Errorf("exit %d, want %d with %q:\n%s", code, tc.code, tc.want, all)
			}
		})
	}
}
