package inspect

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/hint"
	"github.com/attestd/attestd/verify"
)

// AppAttest is what a report says of an App Attest value (kind "aa"):
// the key it names, the nonce, and, once the key store was asked, the
// key's environment and the assertion's counter.
type AppAttest struct {
	// KeyID is the key id in standard base64, as Apple gives it.
	KeyID string `json:"keyId"`
	// Nonce is the value's nonce in standard base64.
	Nonce string `json:"nonce"`
	// ClientDataHash is what the assertion must sign,
	// header.AppAttestClientDataHash of the value, in standard base64.
	ClientDataHash string `json:"clientDataHash"`
	// Environment is the registered key's environment ("development" or
	// "production"); empty when the key store was not asked or does not
	// know the key.
	Environment string `json:"environment,omitempty"`
	// Counter is the assertion's counter, once its signature verified.
	Counter *uint32 `json:"counter,omitempty"`
}

// appAttestOf describes an App Attest value's key fields.
func appAttestOf(keyID, nonce []byte, g time.Time) *AppAttest {
	cdh := header.AppAttestClientDataHash(keyID, g, nonce)
	return &AppAttest{KeyID: base64.StdEncoding.EncodeToString(keyID), Nonce: base64.StdEncoding.EncodeToString(nonce),
		ClientDataHash: base64.StdEncoding.EncodeToString(cdh[:])}
}

// isAppAttest reports whether in (trimmed) parses as a value of kind
// "aa".
func isAppAttest(in string) bool {
	a, err := verify.Parse(in)
	return err == nil && a.Kind == header.KindAppAttest
}

// errNoKeyStore is why an App Attest value was only decoded.
var errNoKeyStore = fmt.Errorf("%w: an App Attest value is checked against the key store, and no --replay-redis was given", verify.ErrNotValidated)

// checkAppAttest checks an App Attest value: against the key store in
// Redis when v has one (the key registered and active, the assertion
// valid, its counter new; Apple is not asked), else locally only.
func checkAppAttest(ctx context.Context, v *verify.Verifier, r *Report, in, redisURL string) Verdict {
	var res *verify.Result
	var err error
	v.Kinds = []string{header.KindAppAttest} // what this run checks, with or without a key store
	if v.Keys == nil {
		if res, err = checkLocally(v, in); err == nil {
			err = hint.Wrap(errNoKeyStore, "pass --replay-redis URL, the Redis the server keeps its App Attest keys in, to check the assertion")
		}
	} else {
		res, err = v.Verify(ctx, in)
	}
	r.fill(res, err)
	code := exitCode(err, v.Keys != nil)
	if code == NotChecked {
		err = fmt.Errorf("could not check the assertion: %w", err)
	}
	return r.verdict(code, hint.Wrap(err, Hint(err, redisURL)))
}
