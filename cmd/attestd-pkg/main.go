// Command attestd-pkg builds, signs, notarizes and verifies the attestd
// helper bundle. packaging/packaging.mk drives it; run
// "go run ./cmd/attestd-pkg help" for its subcommands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/attestd/attestd/packaging/bundle"
	"github.com/attestd/attestd/packaging/bundlecheck"
	"github.com/attestd/attestd/packaging/plists"
	"github.com/attestd/attestd/packaging/sign"
)

type subcommand struct {
	summary string
	run     func(ctx context.Context, stdout, stderr io.Writer, args []string) error
}

var subcommands = map[string]subcommand{
	"fat":      {"join thin Mach-O executables into a universal one (go-macho CreateFat)", runFat},
	"bundle":   {"assemble Attestd.app, its LaunchAgent plist and resolved entitlements", runBundle},
	"verify":   {"check slices, signatures, entitlements and the LaunchAgent (any OS)", runVerify},
	"sign":     {"sign the bundle inside-out (codesign on macOS, rcodesign elsewhere)", runSign},
	"notarize": {"notarize and staple the signed bundle", runNotarize},
}

// errFailed exits 1 after the subcommand has printed why.
var errFailed = errors.New("failed")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Stdout, os.Stderr, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, stdout, stderr io.Writer, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintf(stderr, "usage: attestd-pkg COMMAND [flags]\n\ncommands:\n")
		for _, n := range []string{"fat", "bundle", "sign", "notarize", "verify"} {
			fmt.Fprintf(stderr, "  %-9s %s\n", n, subcommands[n].summary)
		}
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	sc, ok := subcommands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "attestd-pkg: error: unknown command %q\n", args[0])
		return 2
	}
	err := sc.run(ctx, stdout, stderr, args[1:])
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errFailed):
		return 1
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "attestd-pkg %s: error: %v\n", args[0], err)
		return 2
	}
	fmt.Fprintf(stderr, "attestd-pkg %s: error: %v\n", args[0], err)
	return 1
}

type usageError string

func (e usageError) Error() string { return string(e) }

func parse(fs *flag.FlagSet, stderr io.Writer, args []string) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError(err.Error())
	}
	return nil
}

func runFat(_ context.Context, stdout, stderr io.Writer, args []string) error {
	fs := flag.NewFlagSet("fat", flag.ContinueOnError)
	out := fs.String("o", "dist/attestd", "universal executable to write")
	if err := parse(fs, stderr, args); err != nil {
		return err
	}
	if err := bundle.Fat(*out, fs.Args()...); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (%d slices)\n", *out, fs.NArg())
	return nil
}

func runBundle(_ context.Context, stdout, stderr io.Writer, args []string) error {
	fs := flag.NewFlagSet("bundle", flag.ContinueOnError)
	var c bundle.Config
	fs.StringVar(&c.Binary, "binary", "dist/attestd", "universal executable")
	fs.StringVar(&c.OutDir, "out", "dist", "output directory")
	fs.StringVar(&c.BundleID, "bundle-id", plists.DefaultBundleID, "helper bundle identifier")
	fs.StringVar(&c.Label, "label", plists.DefaultLabel, "LaunchAgent label")
	fs.StringVar(&c.Version, "version", "dev", "build version (git describe)")
	fs.StringVar(&c.Profile, "profile", "", "provisioning profile to embed (optional)")
	fs.StringVar(&c.Entitlements, "entitlements", "entitlements/attestd.entitlements", "entitlements to resolve for signing")
	fs.StringVar(&c.TeamID, "team-id", "", "team identifier (for the profile entitlements)")
	fs.StringVar(&c.SocketKey, "socket-key", "", "the agent's SecureSocketWithKey variable (default: derived from the label)")
	fs.StringVar(&c.PeerRequirement, "peer-requirement", "", `code requirement peers must satisfy; empty: the team's when -team-id is set; "none": any process of the user`)
	appAttestFlags(fs, &c.Provider, &c.AppAttestEnv, &c.AppAttestRegister)
	checkOnly := fs.Bool("check", false, "only check the settings (team, App Attest, profile); build nothing")
	if err := parse(fs, stderr, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected arguments")
	}
	if *checkOnly {
		_, _, err := bundle.CheckSettings(c)
		return err
	}
	r, err := bundle.Assemble(c)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\nwrote %s\n", r.Bundle, r.LaunchAgent)
	if r.Entitlements != "" {
		fmt.Fprintf(stdout, "wrote %s\n", r.Entitlements)
	}
	fmt.Fprintf(stdout, "socket key: %s (clients: attestd --agent %s, or launchctl getenv %s)\n", r.SocketKey, c.Label, r.SocketKey)
	fmt.Fprintf(stdout, "provider: %s", r.Provider)
	if c.AppAttestRegister != "" {
		fmt.Fprintf(stdout, ", App Attest keys registered with %s", c.AppAttestRegister)
	}
	if c.AppAttestEnv != "" {
		fmt.Fprintf(stdout, " (App Attest environment %s)", c.AppAttestEnv)
	}
	fmt.Fprintln(stdout)
	if r.PeerRequirement != "" {
		fmt.Fprintf(stdout, "peer requirement: %s\n", r.PeerRequirement)
	} else {
		fmt.Fprintf(stdout, "peer requirement: none: any process of this user may ask for tokens (set TEAM_ID or PEER_REQUIREMENT)\n")
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(stderr, "attestd-pkg bundle: warning: %s\n", w)
	}
	return nil
}

func runVerify(_ context.Context, stdout, stderr io.Writer, args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	var c bundlecheck.Config
	fs.StringVar(&c.Bundle, "bundle", "dist/"+bundle.Dir, "helper bundle")
	fs.StringVar(&c.LaunchAgent, "agent", "", "LaunchAgent plist (default dist/LaunchAgents/LABEL.plist)")
	fs.StringVar(&c.Entitlements, "entitlements", "dist/"+bundle.EntitlementsFile, "entitlements the bundle is signed with")
	fs.StringVar(&c.BundleID, "bundle-id", plists.DefaultBundleID, "expected bundle identifier")
	fs.StringVar(&c.TeamID, "team-id", "", "expected Team ID (empty: any)")
	fs.StringVar(&c.Label, "label", plists.DefaultLabel, "expected LaunchAgent label")
	fs.StringVar(&c.PeerRequirement, "peer-requirement", "", `the PEER_REQUIREMENT the agent was built with (empty: the team's when -team-id is set; "none": none)`)
	appAttestFlags(fs, &c.Provider, &c.AppAttestEnv, &c.AppAttestRegister)
	if err := parse(fs, stderr, args); err != nil {
		return err
	}
	if c.LaunchAgent == "" {
		c.LaunchAgent = "dist/LaunchAgents/" + c.Label + ".plist"
	}
	r, err := bundlecheck.Verify(c)
	if err != nil {
		return err
	}
	r.Write(stdout)
	if c.TeamID == "" && !r.Unsigned {
		fmt.Fprintf(stdout, "note: TEAM_ID not set; any Team ID was accepted\n")
	}
	if !r.OK() {
		return errFailed
	}
	return nil
}

// appAttestFlags are the PROVIDER, APPATTEST_ENV and APPATTEST_REGISTER
// make variables, for bundle (to build with) and verify (to expect).
func appAttestFlags(fs *flag.FlagSet, provider, env, register *string) {
	fs.StringVar(provider, "provider", "", "the agent's provider: auto, devicecheck or appattest (empty: auto with -appattest-register, else devicecheck)")
	fs.StringVar(env, "appattest-env", "", "App Attest environment the helper is entitled to: development or production (empty: none; needs -profile)")
	fs.StringVar(register, "appattest-register", "", "https URL the agent registers its App Attest key with (--appattest-register)")
}

func signFlags(fs *flag.FlagSet, c *sign.Config, signer *string) {
	fs.StringVar(&c.Bundle, "bundle", "dist/"+bundle.Dir, "helper bundle")
	fs.StringVar(signer, "signer", "", "codesign or rcodesign (default: codesign on macOS, else rcodesign)")
}

func runSign(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	fs := flag.NewFlagSet("sign", flag.ContinueOnError)
	var c sign.Config
	var signer string
	signFlags(fs, &c, &signer)
	fs.StringVar(&c.Entitlements, "entitlements", "dist/"+bundle.EntitlementsFile, "entitlements plist")
	fs.StringVar(&c.BundleID, "bundle-id", plists.DefaultBundleID, "helper bundle identifier")
	fs.StringVar(&c.Identity, "identity", "", "codesign identity (Developer ID Application: …)")
	fs.StringVar(&c.P12File, "p12-file", "", "rcodesign: PKCS #12 certificate and key")
	fs.StringVar(&c.P12PasswordFile, "p12-password-file", "", "rcodesign: file with the PKCS #12 password")
	if err := parse(fs, stderr, args); err != nil {
		return err
	}
	t, err := sign.PickTool(signer)
	if err != nil {
		return err
	}
	plan, err := sign.SignPlan(t, c)
	if err != nil {
		return err
	}
	return sign.Run(ctx, stderr, plan)
}

func runNotarize(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	fs := flag.NewFlagSet("notarize", flag.ContinueOnError)
	var c sign.Config
	var signer string
	signFlags(fs, &c, &signer)
	fs.StringVar(&c.Zip, "zip", "", "zip to upload (notarytool; default: the bundle's path with .zip)")
	fs.StringVar(&c.NotaryProfile, "keychain-profile", "", "notarytool keychain profile")
	fs.StringVar(&c.NotaryKey, "key", "", "App Store Connect API key (.p8)")
	fs.StringVar(&c.NotaryKeyID, "key-id", "", "App Store Connect API key id")
	fs.StringVar(&c.NotaryIssuer, "issuer", "", "App Store Connect issuer id")
	fs.StringVar(&c.NotaryAPIKeyJSON, "api-key-json", "", "rcodesign: API key JSON (rcodesign encode-app-store-connect-api-key)")
	if err := parse(fs, stderr, args); err != nil {
		return err
	}
	t, err := sign.PickTool(signer)
	if err != nil {
		return err
	}
	return sign.Notarize(ctx, t, c, stderr)
}
