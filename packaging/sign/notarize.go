package sign

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// Notarization fails loudly. "xcrun notarytool submit --wait" exits 0 even
// when Apple answers Invalid; a pipeline that trusts the exit status then
// fails later, at stapler, with a misleading error, and Apple's log, which
// names each problem, is never shown. So Notarize asks for the verdict in
// JSON, requires "Accepted", and otherwise fetches Apple's log, prints it
// and fails with its summary. The rcodesign path does the same through
// "rcodesign notary-log".

// ErrNotAccepted is wrapped by every notarization Apple did not accept.
var ErrNotAccepted = errors.New("notarization not accepted")

// StatusAccepted is the notary service's verdict for a good submission.
const StatusAccepted = "Accepted"

// NotaryIssue is one problem in Apple's notarization log.
type NotaryIssue struct {
	Severity     string `json:"severity"`
	Path         string `json:"path"`
	Message      string `json:"message"`
	Architecture string `json:"architecture"`
	DocURL       string `json:"docUrl"`
}

// NotaryLog is the part of Apple's notarization log (notarytool log,
// rcodesign notary-log) that says why.
type NotaryLog struct {
	JobID         string        `json:"jobId"`
	Status        string        `json:"status"`
	StatusSummary string        `json:"statusSummary"`
	Issues        []NotaryIssue `json:"issues"`
}

// NotaryError is a submission Apple did not accept, with what its log
// says.
type NotaryError struct {
	ID     string // the submission id
	Status string // Invalid, Rejected, In Progress, …
	Log    *NotaryLog
	// LogErr says why the log could not be had, if it could not.
	LogErr error
}

func (e *NotaryError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "notarization %s: Apple answered %q, not %q", e.ID, e.Status, StatusAccepted)
	if e.Log != nil {
		if e.Log.StatusSummary != "" {
			fmt.Fprintf(&b, " (%s)", e.Log.StatusSummary)
		}
		for _, is := range e.Log.Issues {
			fmt.Fprintf(&b, "\n  %s: %s", is.Severity, is.Path)
			if is.Architecture != "" {
				fmt.Fprintf(&b, " [%s]", is.Architecture)
			}
			fmt.Fprintf(&b, ": %s", is.Message)
			if is.DocURL != "" {
				fmt.Fprintf(&b, " (%s)", is.DocURL)
			}
		}
	}
	if e.LogErr != nil {
		fmt.Fprintf(&b, "\n  the log could not be fetched: %v", e.LogErr)
	}
	return b.String()
}

func (e *NotaryError) Unwrap() error { return ErrNotAccepted }

// Notarize submits the signed bundle c.Bundle to Apple's notary service,
// waits for the verdict, requires Accepted, and staples the ticket. Every
// command is echoed to log, with its output; Apple's log is printed when
// the verdict is anything else, and the error (a *NotaryError) carries its
// summary and issues.
func Notarize(ctx context.Context, t Tool, c Config, log io.Writer) error {
	if c.Bundle == "" {
		return errors.New("notarize: need the bundle")
	}
	// "Host.app/" (as a shell completes it) would put the default zip
	// inside the bundle, breaking its seal.
	c.Bundle = filepath.Clean(c.Bundle)
	switch t {
	case Codesign:
		return notarizeXcrun(ctx, c, log)
	case Rcodesign:
		return notarizeRcodesign(ctx, c, log)
	}
	return fmt.Errorf("notarize: unknown tool %q", t)
}

func notaryAuth(c Config) ([]string, error) {
	switch {
	case c.NotaryProfile != "":
		return []string{"--keychain-profile", c.NotaryProfile}, nil
	case c.NotaryKey != "" && c.NotaryKeyID != "" && c.NotaryIssuer != "":
		return []string{"--key", c.NotaryKey, "--key-id", c.NotaryKeyID, "--issuer", c.NotaryIssuer}, nil
	case c.NotaryKey != "" || c.NotaryKeyID != "" || c.NotaryIssuer != "":
		return nil, fmt.Errorf("%w: an App Store Connect API key needs all of NOTARY_KEY (the .p8), NOTARY_KEY_ID and NOTARY_ISSUER", ErrCredentials)
	}
	return nil, fmt.Errorf("%w: set NOTARY_PROFILE (made with: xcrun notarytool store-credentials NAME) or NOTARY_KEY, NOTARY_KEY_ID and NOTARY_ISSUER", ErrCredentials)
}

// submitResult is notarytool's JSON answer to submit --wait.
type submitResult struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

func notarizeXcrun(ctx context.Context, c Config, log io.Writer) error {
	auth, err := notaryAuth(c)
	if err != nil {
		return err
	}
	zip := c.Zip
	if zip == "" {
		zip = strings.TrimSuffix(c.Bundle, ".app") + ".zip"
	}
	if err := Run(ctx, log, []Cmd{{Name: "ditto", Args: []string{"-c", "-k", "--keepParent", c.Bundle, zip}}}); err != nil {
		return err
	}
	out, runErr := output(ctx, log, Cmd{Name: "xcrun", Args: append([]string{"notarytool", "submit", zip, "--wait", "--output-format", "json"}, auth...)})
	log.Write(out)
	var res submitResult
	jsonErr := json.Unmarshal(bytes.TrimSpace(out), &res)
	switch {
	case jsonErr != nil || res.ID == "":
		if runErr == nil {
			runErr = fmt.Errorf("no submission id in its answer %q", firstLine(out))
		}
		return fmt.Errorf("notarytool submit: %w (nothing was notarized; the error above says why)", runErr)
	case res.Status != StatusAccepted:
		return notAccepted(ctx, log, res.ID, res.Status, Cmd{Name: "xcrun", Args: append([]string{"notarytool", "log", res.ID}, auth...)})
	case runErr != nil:
		return fmt.Errorf("notarytool submit: %w", runErr)
	}
	fmt.Fprintf(log, "notarization %s: %s\n", res.ID, res.Status)
	return Run(ctx, log, []Cmd{
		{Name: "xcrun", Args: []string{"stapler", "staple", c.Bundle}},
		{Name: "xcrun", Args: []string{"stapler", "validate", c.Bundle}},
	})
}

// rcodesignSubmission is how rcodesign names the submission it created
// (a warn! line: "created submission ID: <uuid>").
var rcodesignSubmission = regexp.MustCompile(`created submission ID: ([0-9A-Fa-f-]{36})`)

func notarizeRcodesign(ctx context.Context, c Config, log io.Writer) error {
	if c.NotaryAPIKeyJSON == "" {
		return fmt.Errorf("%w: set NOTARY_API_KEY_JSON to the file from: rcodesign encode-app-store-connect-api-key -o key.json ISSUER_ID KEY_ID AuthKey_KEY_ID.p8", ErrCredentials)
	}
	key := []string{"--api-key-file", c.NotaryAPIKeyJSON}
	// rcodesign exits non-zero when Apple does not accept (since 2022), and
	// prints no machine-readable verdict: take the id from its log, ask for
	// Apple's log in JSON, and judge by that.
	out, runErr := combined(ctx, log, Cmd{Name: "rcodesign", Args: append(append([]string{"notary-submit"}, key...), "--wait", c.Bundle)})
	m := rcodesignSubmission.FindSubmatch(out)
	if m == nil {
		if runErr == nil {
			runErr = errors.New("it named no submission")
		}
		return fmt.Errorf("rcodesign notary-submit: %w (nothing was notarized; the error above says why)", runErr)
	}
	id := string(m[1])
	logCmd := Cmd{Name: "rcodesign", Args: append(append([]string{"notary-log"}, key...), id)}
	lg, data, err := fetchLog(ctx, log, logCmd)
	switch {
	case err != nil:
		return &NotaryError{ID: id, Status: "unknown", LogErr: errors.Join(runErr, err)}
	case lg.Status != StatusAccepted:
		log.Write(data)
		return &NotaryError{ID: id, Status: lg.Status, Log: lg}
	case runErr != nil:
		return fmt.Errorf("rcodesign notary-submit: %w (though Apple's log says %s)", runErr, lg.Status)
	}
	fmt.Fprintf(log, "notarization %s: %s\n", id, lg.Status)
	return Run(ctx, log, []Cmd{{Name: "rcodesign", Args: []string{"staple", c.Bundle}}})
}

// notAccepted fetches and prints Apple's log for a submission whose
// status is not Accepted and returns the error that says why.
func notAccepted(ctx context.Context, log io.Writer, id, status string, logCmd Cmd) error {
	lg, data, err := fetchLog(ctx, log, logCmd)
	if err != nil {
		return &NotaryError{ID: id, Status: status, LogErr: err}
	}
	log.Write(data)
	return &NotaryError{ID: id, Status: status, Log: lg}
}

// fetchLog runs logCmd and parses Apple's JSON log from its output.
func fetchLog(ctx context.Context, log io.Writer, logCmd Cmd) (*NotaryLog, []byte, error) {
	out, err := output(ctx, log, logCmd)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", logCmd.Name, strings.Join(logCmd.Args[:1], " "), err)
	}
	var lg NotaryLog
	if err := json.Unmarshal(bytes.TrimSpace(out), &lg); err != nil {
		return nil, nil, fmt.Errorf("Apple's log is not JSON: %w", err)
	}
	if lg.Status == "" {
		return nil, nil, fmt.Errorf("Apple's log has no status")
	}
	return &lg, out, nil
}

// output runs c, echoing it and its stderr to log, and returns its stdout.
func output(ctx context.Context, log io.Writer, c Cmd) ([]byte, error) {
	fmt.Fprintf(log, "+ %s\n", c)
	cmd := exec.CommandContext(ctx, c.Name, c.Args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, log
	err := cmd.Run()
	return out.Bytes(), err
}

// combined runs c, echoing it and all its output to log, and returns that
// output too.
func combined(ctx context.Context, log io.Writer, c Cmd) ([]byte, error) {
	fmt.Fprintf(log, "+ %s\n", c)
	cmd := exec.CommandContext(ctx, c.Name, c.Args...)
	var out bytes.Buffer
	w := io.MultiWriter(&out, log)
	cmd.Stdout, cmd.Stderr = w, w
	err := cmd.Run()
	return out.Bytes(), err
}

func firstLine(b []byte) string {
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return line
}
