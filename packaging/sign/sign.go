// Package sign plans and runs the signing and notarization commands for
// the helper bundle: Apple's codesign, notarytool and stapler on macOS,
// rcodesign (apple-codesign) elsewhere.
package sign

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// Cmd is one command of a plan.
type Cmd struct {
	Name string
	Args []string
}

func (c Cmd) String() string {
	parts := []string{c.Name}
	for _, a := range c.Args {
		if a == "" || strings.ContainsAny(a, " \t'\"$\\;&|<>()*?") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// Tool is a signing tool.
type Tool string

const (
	Codesign  Tool = "codesign"  // Apple's codesign, notarytool, stapler (macOS)
	Rcodesign Tool = "rcodesign" // apple-codesign, any OS
)

// Seams for tests.
var (
	goos     = runtime.GOOS
	lookPath = exec.LookPath
)

// ErrNoTool reports that no usable signing tool is installed.
var ErrNoTool = errors.New("no signing tool found")

// ErrCredentials reports missing signing or notary credentials.
var ErrCredentials = errors.New("missing credentials")

// PickTool returns the tool to use: want if set ("codesign" or
// "rcodesign"), else codesign on macOS and rcodesign when on PATH.
func PickTool(want string) (Tool, error) {
	switch Tool(want) {
	case Codesign:
		if goos != "darwin" {
			return "", fmt.Errorf("%w: codesign runs only on macOS (this is %s); use SIGNER=rcodesign", ErrNoTool, goos)
		}
		if _, err := lookPath("codesign"); err != nil {
			return "", fmt.Errorf("%w: codesign not on PATH; install the Xcode command line tools: xcode-select --install", ErrNoTool)
		}
		return Codesign, nil
	case Rcodesign:
		if _, err := lookPath("rcodesign"); err != nil {
			return "", fmt.Errorf("%w: rcodesign not on PATH; install apple-codesign (cargo install apple-codesign, or a release from github.com/indygreg/apple-platform-rs)", ErrNoTool)
		}
		return Rcodesign, nil
	case "":
	default:
		return "", fmt.Errorf("unknown signer %q (want codesign or rcodesign)", want)
	}
	if goos == "darwin" {
		if _, err := lookPath("codesign"); err == nil {
			return Codesign, nil
		}
	}
	if _, err := lookPath("rcodesign"); err == nil {
		return Rcodesign, nil
	}
	if goos == "darwin" {
		return "", fmt.Errorf("%w: install the Xcode command line tools (xcode-select --install) for codesign, notarytool and stapler", ErrNoTool)
	}
	return "", fmt.Errorf("%w: %s has no codesign; install rcodesign (apple-codesign: cargo install apple-codesign, or a release from github.com/indygreg/apple-platform-rs), or sign on a Mac", ErrNoTool, goos)
}

// Config holds what signing and notarizing need. Fields for the other
// tool are ignored.
type Config struct {
	Bundle       string // dist/Attestd.app
	Entitlements string // dist/Attestd.entitlements
	BundleID     string

	// codesign: a certificate name or SHA-1 in the keychain.
	Identity string
	// rcodesign: a PKCS #12 file with the Developer ID certificate and
	// key, and a file holding its password.
	P12File         string
	P12PasswordFile string

	// Notarization with notarytool: a keychain profile, or an App Store
	// Connect API key (.p8 path, key id, issuer id).
	NotaryProfile string
	NotaryKey     string
	NotaryKeyID   string
	NotaryIssuer  string
	// Notarization with rcodesign: the JSON from
	// "rcodesign encode-app-store-connect-api-key".
	NotaryAPIKeyJSON string
	// Zip is where notarytool's upload goes (dist/Attestd.zip).
	Zip string
}

// SignPlan returns the commands that sign the helper bundle with the
// hardened runtime, a secure timestamp and the entitlements, never with
// --deep. The bundle is signed once: its signature lives in the main
// executable (both slices) and binds Info.plist and the sealed resources,
// so signing the executable on its own first would only be overwritten.
// Identity "-" signs ad hoc (CI), which takes no timestamp.
func SignPlan(t Tool, c Config) ([]Cmd, error) {
	if c.Bundle == "" || c.Entitlements == "" || c.BundleID == "" {
		return nil, errors.New("sign: need the bundle, its entitlements and its bundle id (run make bundle first)")
	}
	switch t {
	case Codesign:
		if c.Identity == "" {
			return nil, fmt.Errorf(`%w: set IDENTITY="Developer ID Application: NAME (TEAMID)" (security find-identity -v -p codesigning lists yours)`, ErrCredentials)
		}
		timestamp := "--timestamp"
		if c.Identity == "-" {
			timestamp = "--timestamp=none"
		}
		return []Cmd{
			// The bundle: codesign takes CFBundleIdentifier as the
			// identifier, binds Info.plist and seals Contents/.
			{Name: "codesign", Args: []string{"--force", "--sign", c.Identity, "--options", "runtime", timestamp,
				"--entitlements", c.Entitlements, c.Bundle}},
			{Name: "codesign", Args: []string{"--verify", "--strict", "--verbose=2", c.Bundle}},
		}, nil
	case Rcodesign:
		if c.P12File == "" {
			return nil, fmt.Errorf("%w: set P12_FILE=developer-id.p12 (the Developer ID Application certificate and key) and P12_PASSWORD_FILE", ErrCredentials)
		}
		args := []string{"sign", "--p12-file", c.P12File}
		if c.P12PasswordFile != "" {
			args = append(args, "--p12-password-file", c.P12PasswordFile)
		}
		// rcodesign signs nested code inside-out itself, names the main
		// executable after CFBundleIdentifier, binds Info.plist, and
		// timestamps with Apple's server by default.
		args = append(args,
			"--code-signature-flags", "runtime",
			"--entitlements-xml-path", c.Entitlements,
			c.Bundle)
		return []Cmd{{Name: "rcodesign", Args: args}}, nil
	}
	return nil, fmt.Errorf("sign: unknown tool %q", t)
}

// Run runs the commands in order, echoing each to log, and stops at the
// first failure.
func Run(ctx context.Context, log io.Writer, plan []Cmd) error {
	for _, c := range plan {
		fmt.Fprintf(log, "+ %s\n", c)
		cmd := exec.CommandContext(ctx, c.Name, c.Args...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s %s: %w", c.Name, firstArg(c.Args), err)
		}
	}
	return nil
}

func firstArg(a []string) string {
	if len(a) == 0 {
		return ""
	}
	return a[0]
}
