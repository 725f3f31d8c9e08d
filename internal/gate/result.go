package gate

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify"
)

// The result headers: what the gate says of a request it admits, on every
// 2xx answer to /auth and on every request it forwards to the upstream.
// Every one is present even when empty: Caddy 2.6 sets a header its
// copy_headers names to a literal placeholder when the answer lacks it.
const (
	// HeaderKind is the attestation's kind: "aa" (App Attest), "dc"
	// (DeviceCheck), "dev" (the development provider, only with
	// AllowDev).
	HeaderKind = "X-Attestd-Kind"
	// HeaderTeam is the team id: for "aa" the one of the App ID the key
	// was attested for (proven); for "dc" and "dev" the one the helper
	// reported (a claim: Apple's answer covers the token alone).
	HeaderTeam = "X-Attestd-Team"
	// HeaderBundle is the bundle id, proven for "aa" and a claim
	// otherwise, as HeaderTeam.
	HeaderBundle = "X-Attestd-Bundle"
	// HeaderFingerprint is the token's fingerprint (header.Fingerprint),
	// the name logs give it; never the token.
	HeaderFingerprint = "X-Attestd-Fingerprint"
	// HeaderAgeMs is how long before the check the token was generated,
	// in whole milliseconds by its g (a claim); negative, by at most
	// verify.MaxClockSkew, when the client's clock is ahead.
	HeaderAgeMs = "X-Attestd-Age-Ms"
	// HeaderKeyID is the App Attest key id for kind "aa" (base64url
	// without padding, as the registration's key paths name it), and
	// empty for the other kinds.
	HeaderKeyID = "X-Attestd-Key-Id"
)

// ResultHeaders lists the result headers, for proxy configurations that
// copy them.
var ResultHeaders = []string{HeaderKind, HeaderTeam, HeaderBundle, HeaderFingerprint, HeaderAgeMs, HeaderKeyID}

// resultPrefix starts every header the gate sets; in proxy mode the
// upstream never sees a client's own header that starts so.
const resultPrefix = "X-Attestd-"

// setResult sets every result header on h from res (nil: all empty).
// For App Attest the team and bundle ids are the attested App ID's, never
// the header's b and m, which a client with a key of one app could set to
// another's. Otherwise they are the client's claims, so any byte outside
// visible ASCII, and %, is percent-encoded: a claim cannot put control
// characters into a header a proxy passes on.
func setResult(h http.Header, res *verify.Result) {
	var kind, team, bundle, fp, age, keyID string
	if res != nil {
		kind, team, bundle, fp = res.Kind, res.TeamID, res.BundleID, res.Fingerprint()
		age = strconv.FormatInt(res.Age.Milliseconds(), 10)
		if kind == header.KindAppAttest {
			keyID = base64.RawURLEncoding.EncodeToString(res.KeyID)
			team, bundle, _ = strings.Cut(res.AppID, ".")
		}
	}
	h.Set(HeaderKind, headerSafe(kind))
	h.Set(HeaderTeam, headerSafe(team))
	h.Set(HeaderBundle, headerSafe(bundle))
	h.Set(HeaderFingerprint, fp)
	h.Set(HeaderAgeMs, age)
	h.Set(HeaderKeyID, keyID)
}

// dropClientResults removes from h every header that starts with
// X-Attestd-, whatever the client set.
func dropClientResults(h http.Header) {
	for name := range h {
		if len(name) >= len(resultPrefix) && strings.EqualFold(name[:len(resultPrefix)], resultPrefix) {
			delete(h, name)
		}
	}
}

// headerSafe percent-encodes every byte of s outside visible ASCII, and %.
func headerSafe(s string) string {
	clean := true
	for i := 0; i < len(s) && clean; i++ {
		clean = s[i] > ' ' && s[i] < 0x7f && s[i] != '%'
	}
	if clean {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c > ' ' && c < 0x7f && c != '%' {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}
