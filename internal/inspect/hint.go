package inspect

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/redisreplay"
)

// Hint says what to do about a check that ended with err, or "".
// redisURL is the replay store's URL, shown without its password.
func Hint(err error, redisURL string) string {
	switch {
	case errors.Is(err, verify.ErrMissing), errors.Is(err, verify.ErrMalformed):
		return fmt.Sprintf(`give the x-oai-attestation header's value (one, at most %d bytes): a "v1." value or the {"v":1,"s":0,"t":"v1.…"} envelope`, MaxInput)
	case errors.Is(err, verify.ErrClientStatus):
		return "the app-server got no token from its client; on the client's Mac run \"attestd doctor\" and \"attestd status\""
	case errors.Is(err, verify.ErrDevToken):
		return "this token is from the dev provider and proves nothing; pass --allow-dev to accept it (never in production)"
	case errors.Is(err, verify.ErrTooOld):
		return "check a fresh token, or raise --max-age"
	case errors.Is(err, verify.ErrFuture):
		return "the client's clock or this machine's is wrong"
	case errors.Is(err, verify.ErrReplay) && errors.Is(err, appattest.ErrReplay):
		return "each assertion is good once: its counter was already accepted, or is below the key's window (the --replay-redis key store says so)"
	case errors.Is(err, verify.ErrReplay):
		return "each token is good for one check, and this one was already checked (it is in the --replay-redis store)"
	case errors.Is(err, verify.ErrUnknownKey):
		return "no App Attest key with this id is registered in the --replay-redis key store: the app registers its key (POST …/appattest/register) before it asserts; check the URL and that the server uses the same store"
	case errors.Is(err, verify.ErrRevokedKey):
		return "the key was revoked (attestd appattest keys show): the app must make and register a new key"
	case errors.Is(err, verify.ErrDevKey):
		return "this key was certified by the development root (or a test CA) and proves nothing; pass --allow-dev to accept it (never in production)"
	case errors.Is(err, verify.ErrAssertion):
		return "the assertion does not verify with the registered key over this value: the header was changed after it was signed, or another key made it"
	case errors.Is(err, verify.ErrKeyStore):
		return fmt.Sprintf("the App Attest key store did not answer, and the check fails closed without it: check that Redis runs at %s", redactURL(redisURL))
	case errors.Is(err, redisreplay.ErrEvictionPolicy):
		return "Redis may evict the records that make a token single-use: set maxmemory-policy noeviction on every master (CONFIG SET maxmemory-policy noeviction, or your provider's parameter; see verify/README.md)"
	case errors.Is(err, verify.ErrReplayStore):
		return fmt.Sprintf("the replay store did not answer, and the check fails closed without it: check that Redis runs at %s", redactURL(redisURL))
	case errors.Is(err, verify.ErrBadDeviceToken):
		return "tokens from a development-signed helper validate only with --environment development"
	case errors.Is(err, verify.ErrBadAuthorization), errors.Is(err, verify.ErrExpiredAuthorization), errors.Is(err, verify.ErrForbidden):
		return "check --team-id and --key-id, this machine's clock, and that the key has DeviceCheck enabled (Certificates, Identifiers & Profiles > Keys)"
	case errors.Is(err, verify.ErrUnexpectedResponse):
		return "that answer did not come from Apple's API: a proxy, a captive portal or a wrong --environment URL is in the way; nothing was validated"
	case errors.Is(err, verify.ErrRateLimited):
		return "Apple rate-limited this team; try again later"
	case unreachable(err):
		return "Apple could not be asked within --timeout; check the network path to the --environment and try again"
	}
	return ""
}

// unreachable reports whether err says Apple did not answer, failed or
// ran out of time. (verify.AppleDown says more: that its breaker counts
// Apple as down, which one run of a few attempts never shows.)
func unreachable(err error) bool {
	switch verify.Reason(err) {
	case "network", "apple_server_error", "apple_unavailable", "timeout":
		return true
	}
	return false
}

// redactURL returns u with its password, if any, shown as "xxxxx": a
// --replay-redis URL may carry Redis's password, and stderr ends up in
// CI logs.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "the --replay-redis URL"
	}
	return p.Redacted()
}
