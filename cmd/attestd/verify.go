package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify"
)

// Exit codes of "attestd verify" besides 0 (valid), 1 (not valid or
// not checkable) and 2 (usage).
const exitNotValidated = 3 // decoded and checked locally; Apple was not asked

func init() {
	c := &command{
		name: "verify",
		summary: "Check an attestation the way a server would, and ask Apple's DeviceCheck API about its token.\n\n" +
			"VALUE is the x-oai-attestation header's value: the app-server's {\"v\":1,\"s\":N,\"t\":\"v1.…\"}\n" +
			"envelope or a bare \"v1.\" value; with - or nothing, it is read from standard input.\n" +
			"The outcome is printed as JSON on standard output. Exit status: 0 valid; 1 not valid,\n" +
			"or Apple could not be asked; 2 usage error; 3 without --team-id, --key-id and --key:\n" +
			"decoded and checked locally only, nothing validated with Apple.",
		usage: "verify [VALUE|-] [--team-id T --key-id K --key FILE] [--environment production|development|URL] [--allow-dev] [--max-age D]",
	}
	c.run = func(ctx context.Context, s *stdio, args []string) error { return runVerify(ctx, s, c, args) }
	register(c)
}

func runVerify(ctx context.Context, s *stdio, c *command, args []string) error {
	fs := newFlagSet(s, c)
	teamID := fs.String("team-id", "", "Apple developer team id (the JWT iss)")
	keyID := fs.String("key-id", "", "id of the DeviceCheck key (the JWT kid)")
	keyFile := fs.String("key", "", "the key's .p8 file (AuthKey_KEYID.p8)")
	env := fs.String("environment", "production", "Apple environment: production, development (tokens from development-signed apps) or a base URL")
	allowDev := fs.Bool("allow-dev", false, "accept tokens from the dev provider (never in production); they are sent to Apple only when --environment is a URL")
	maxAge := fs.Duration("max-age", 0, "refuse tokens generated longer ago than this (0: no limit)")
	timeout := fs.Duration("timeout", 10*time.Second, "time limit for each request to Apple")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usagef("give one value, or - to read standard input")
	}
	keyFlags := 0
	for _, v := range []string{*teamID, *keyID, *keyFile} {
		if v != "" {
			keyFlags++
		}
	}
	if keyFlags != 0 && keyFlags != 3 {
		return usagef("give all of --team-id, --key-id and --key to ask Apple, or none to only decode")
	}
	if *maxAge < 0 || *timeout <= 0 {
		return usagef("--max-age must not be negative and --timeout must be positive")
	}
	baseURL, err := verify.EnvironmentURL(*env)
	if err != nil {
		return usagef("--environment: %v", err)
	}

	in := ""
	if len(pos) == 1 && pos[0] != "-" {
		in = pos[0]
	} else {
		b, err := io.ReadAll(io.LimitReader(s.in, header.MaxEnvelopeLen+1024))
		if err != nil {
			return fmt.Errorf("read standard input: %w", err)
		}
		in = string(b)
	}
	in = trimHeaderName(in)

	v := &verify.Verifier{AllowDev: *allowDev, MaxAge: *maxAge}
	out := &verifyOutput{}
	var res *verify.Result
	if keyFlags == 0 {
		// Decode and apply the local policy; nothing goes to Apple.
		a, perr := verify.Parse(in)
		if a != nil {
			res = &verify.Result{Attestation: *a}
			if !a.GeneratedAt.IsZero() {
				res.Age = time.Since(a.GeneratedAt)
			}
		}
		err = perr
		if err == nil {
			err = v.Check(a)
		}
		if err == nil {
			err = verify.ErrNotValidated
		}
	} else {
		key, kerr := verify.LoadPrivateKey(*keyFile)
		if kerr != nil {
			return withHint(kerr, "give the .p8 file Apple let you download once when you created the key (Certificates, Identifiers & Profiles > Keys)")
		}
		client, cerr := verify.NewClient(verify.Config{TeamID: *teamID, KeyID: *keyID, Key: key, BaseURL: baseURL, Timeout: *timeout})
		if cerr != nil {
			return cerr
		}
		defer client.CloseIdleConnections()
		v.Client = client
		out.Environment = baseURL
		res, err = v.Verify(ctx, in)
	}
	out.fill(res, err)
	enc := json.NewEncoder(s.out)
	enc.SetIndent("", "  ")
	if werr := enc.Encode(out); werr != nil {
		return werr
	}
	switch {
	case err == nil:
		return nil
	case keyFlags == 0 && errors.Is(err, verify.ErrNotValidated):
		fmt.Fprintf(s.err, "attestd: note: decoded only; nothing was validated with Apple\n")
		fmt.Fprintf(s.err, "attestd: hint: pass --team-id, --key-id and --key to ask Apple\n")
		return exitCode(exitNotValidated)
	}
	return withHint(err, "%s", verifyHint(err))
}

// parseInterleaved parses flags given before or after the positional
// arguments, which it returns; everything after "--" is positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if i := len(args) - len(rest); i > 0 && args[i-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// trimHeaderName drops a leading "x-oai-attestation:" so a header line
// copied from a log can be pasted as is.
func trimHeaderName(s string) string {
	s = strings.TrimSpace(s)
	if name, rest, ok := strings.Cut(s, ":"); ok && strings.EqualFold(strings.TrimSpace(name), verify.HeaderName) {
		return strings.TrimSpace(rest)
	}
	return s
}

// verifyOutput is what "attestd verify" prints. It never holds the token,
// only its fingerprint.
type verifyOutput struct {
	// Valid is true only when every check passed (exit status 0).
	Valid bool `json:"valid"`
	// Validated is true when Apple was asked and answered.
	Validated   bool   `json:"validated"`
	Reason      string `json:"reason,omitempty"`
	Error       string `json:"error,omitempty"`
	Environment string `json:"environment,omitempty"`

	Form          string `json:"form,omitempty"`
	Status        *int   `json:"status,omitempty"`
	StatusName    string `json:"statusName,omitempty"`
	StatusMeaning string `json:"statusMeaning,omitempty"`
	Kind          string `json:"kind,omitempty"`
	Fingerprint   string `json:"fingerprint,omitempty"`
	TokenBytes    int    `json:"tokenBytes,omitempty"`
	GeneratedAt   string `json:"generatedAt,omitempty"`
	Age           string `json:"age,omitempty"`
	BundleID      string `json:"bundleId,omitempty"`
	TeamID        string `json:"teamId,omitempty"`

	Apple *appleOutput `json:"apple,omitempty"`
}

// appleOutput is Apple's answer when it was not a success.
type appleOutput struct {
	HTTPStatus int    `json:"httpStatus"`
	Body       string `json:"body,omitempty"`
	Attempts   int    `json:"attempts"`
}

func (o *verifyOutput) fill(res *verify.Result, err error) {
	o.Valid = err == nil && res != nil && res.Valid
	if err != nil {
		o.Reason, o.Error = verify.Reason(err), err.Error()
	}
	var ae *verify.AppleError
	if errors.As(err, &ae) {
		o.Apple = &appleOutput{HTTPStatus: ae.Status, Body: ae.Body, Attempts: ae.Attempts}
	}
	if res == nil {
		return
	}
	o.Validated = res.AppleChecked
	o.Form = string(res.Form)
	st := int(res.Status)
	o.Status, o.StatusName, o.StatusMeaning = &st, res.Status.String(), verify.StatusText(res.Status)
	o.Kind, o.Fingerprint, o.TokenBytes = res.Kind, res.Fingerprint(), len(res.Token)
	if !res.GeneratedAt.IsZero() {
		o.GeneratedAt = res.GeneratedAt.UTC().Format(time.RFC3339Nano)
		if res.Age != 0 {
			o.Age = res.Age.Round(time.Millisecond).String()
		}
	}
	o.BundleID, o.TeamID = res.BundleID, res.TeamID
}

func verifyHint(err error) string {
	switch {
	case errors.Is(err, verify.ErrMissing), errors.Is(err, verify.ErrMalformed):
		return `give the x-oai-attestation header's value: a "v1." value or the {"v":1,"s":0,"t":"v1.…"} envelope`
	case errors.Is(err, verify.ErrClientStatus):
		return "the app-server got no token from its client; on the client's Mac run \"attestd doctor\" and \"attestd status\""
	case errors.Is(err, verify.ErrDevToken):
		return "this token is from the dev provider and proves nothing; pass --allow-dev to accept it (never in production)"
	case errors.Is(err, verify.ErrTooOld):
		return "check a fresh token, or raise --max-age"
	case errors.Is(err, verify.ErrFuture):
		return "the client's clock or this machine's is wrong"
	case errors.Is(err, verify.ErrBadDeviceToken):
		return "tokens from a development-signed helper validate only with --environment development"
	case errors.Is(err, verify.ErrBadAuthorization), errors.Is(err, verify.ErrExpiredAuthorization), errors.Is(err, verify.ErrForbidden):
		return "check --team-id and --key-id, this machine's clock, and that the key has DeviceCheck enabled (Certificates, Identifiers & Profiles > Keys)"
	case errors.Is(err, verify.ErrNetwork), errors.Is(err, verify.ErrUnavailable), errors.Is(err, verify.ErrServerError), errors.Is(err, verify.ErrRateLimited):
		return "Apple could not be asked; check the network path to the --environment and try again"
	}
	return ""
}
