package inspect

import (
	"errors"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/redisreplay"
)

// Report is what "attestd verify" prints. It never holds the token, only
// its fingerprint.
type Report struct {
	// Valid is true only when every check passed (exit status 0).
	Valid bool `json:"valid"`
	// Outcome names the exit status: valid, not_valid, decoded_only or
	// not_checked.
	Outcome string `json:"outcome"`
	// Validated is true when Apple answered about the token: it accepted
	// it, or refused it as a bad device token.
	Validated   bool   `json:"validated"`
	Reason      string `json:"reason,omitempty"`
	Error       string `json:"error,omitempty"`
	Environment string `json:"environment,omitempty"`
	// ReplayStore is what the --replay-redis store said of itself.
	ReplayStore *ReplayStore `json:"replayStore,omitempty"`

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
	// AppAttest is the key and nonce of an App Attest value (kind "aa"),
	// and what the key store said.
	AppAttest *AppAttest `json:"appAttest,omitempty"`

	Apple *AppleAnswer `json:"apple,omitempty"`
}

// ReplayStore is the Redis of --replay-redis: each master's
// maxmemory-policy ("" when it could not be read).
type ReplayStore struct {
	Masters []redisreplay.MasterPolicy `json:"masters"`
}

// AppleAnswer is Apple's answer when it was not a success.
type AppleAnswer struct {
	HTTPStatus int    `json:"httpStatus"`
	Body       string `json:"body,omitempty"`
	Attempts   int    `json:"attempts"`
}

func (r *Report) fill(res *verify.Result, err error) {
	r.Valid = err == nil && res != nil && res.Valid
	if err != nil {
		r.Reason, r.Error = verify.Reason(err), err.Error()
	}
	var ae *verify.AppleError
	if errors.As(err, &ae) {
		r.Apple = &AppleAnswer{HTTPStatus: ae.Status, Body: ae.Body, Attempts: ae.Attempts}
	}
	if res == nil {
		return
	}
	r.Validated = res.AppleChecked
	r.Form = string(res.Form)
	st := int(res.Status)
	r.Status, r.StatusName, r.StatusMeaning = &st, res.Status.String(), verify.StatusText(res.Status)
	r.Kind, r.Fingerprint, r.TokenBytes = res.Kind, res.Fingerprint(), len(res.Token)
	if !res.GeneratedAt.IsZero() {
		r.GeneratedAt = res.GeneratedAt.UTC().Format(time.RFC3339Nano)
		if res.Age != 0 {
			r.Age = res.Age.Round(time.Millisecond).String()
		}
	}
	r.BundleID, r.TeamID = res.BundleID, res.TeamID
	if res.Kind == header.KindAppAttest {
		r.AppAttest = appAttestOf(res.KeyID, res.Nonce, res.GeneratedAt)
		r.AppAttest.Environment = res.Environment
		if res.Counter != 0 || res.Valid {
			c := res.Counter
			r.AppAttest.Counter = &c
		}
	}
}
