package main

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/help from the current output")

// TestHelpGolden pins "attestd help" and every command's -h output, byte
// for byte, as the built binary prints them: moving code must not change
// what a user reads. After an intended change, run
// go test ./cmd/attestd -run TestHelpGolden -update and review the diff.
func TestHelpGolden(t *testing.T) {
	bin := attestdBinary(t)
	run := func(args ...string) string {
		cmd := exec.Command(bin, args...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
		out, err := cmd.CombinedOutput()
		if _, exit := err.(*exec.ExitError); err != nil && !exit {
			t.Fatalf("attestd %v: %v", args, err)
		}
		return string(out)
	}
	cases := map[string][]string{"help": {"help"}}
	for _, line := range strings.Split(run("help"), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 || !strings.HasPrefix(line, "  ") || fields[0] == "version" {
			continue
		}
		cases[fields[0]] = []string{fields[0], "-h"}
	}
	for _, sub := range []string{"install", "uninstall", "status"} {
		cases["agent-"+sub] = []string{"agent", sub, "-h"}
	}
	for _, sub := range []string{"attestation", "assertion", "keys"} {
		cases["appattest-"+sub] = []string{"appattest", sub, "-h"}
	}
	if len(cases) < 13 {
		t.Fatalf("help lists %d commands, want every command:\n%s", len(cases)-1, run("help"))
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			got := run(args...)
			path := filepath.Join("testdata", "help", name+".txt")
			if *updateGolden {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("attestd %s changed; want %s:\n%s\ngot:\n%s", strings.Join(args, " "), path, want, got)
			}
		})
	}
}
