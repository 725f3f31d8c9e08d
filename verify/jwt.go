package verify

import (
	"crypto/ecdsa"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Apple accepts an authorization token for up to an hour after its iat,
// and asks for a new one no more often than every 20 minutes and at least
// every 60. One is reused for DefaultJWTRefresh, then replaced; a
// configured interval is clamped to 20–55 minutes, which leaves room for
// the iat being set jwtBackdate early.
const (
	DefaultJWTRefresh = 20 * time.Minute
	minJWTRefresh     = 20 * time.Minute
	maxJWTRefresh     = 55 * time.Minute
	// jwtBackdate is how far before now a JWT's iat is set, so that a
	// server clock up to this far ahead of Apple's does not make the
	// token look issued in the future.
	jwtBackdate = time.Minute
)

// jwtSource hands out the ES256 bearer token for Apple's API, signing a
// new one only when the cached one is older than refresh (or was refused).
// It is safe for concurrent use.
type jwtSource struct {
	teamID, keyID string
	key           *ecdsa.PrivateKey
	refresh       time.Duration
	now           func() time.Time
	// sign is a seam: tests wrap it to count signatures.
	sign func(t *jwt.Token, key *ecdsa.PrivateKey) (string, error)

	mu     sync.Mutex
	tok    string
	signed time.Time // when tok was signed (its iat is jwtBackdate earlier)
}

func signToken(t *jwt.Token, key *ecdsa.PrivateKey) (string, error) { return t.SignedString(key) }

// token returns the cached bearer token, or signs a new one when the cached
// one is older than refresh or has been invalidated; fresh reports
// whether it was signed by this call.
func (s *jwtSource) token() (tok string, fresh bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	// A clock that stepped backwards makes the cached signing time lie;
	// re-sign.
	if s.tok != "" && now.Sub(s.signed) < s.refresh && !now.Before(s.signed) {
		return s.tok, false, nil
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": s.teamID,
		"iat": now.Add(-jwtBackdate).Unix(),
	})
	t.Header["kid"] = s.keyID
	signed, err := s.sign(t, s.key)
	if err != nil {
		return "", false, fmt.Errorf("sign authorization token: %w", err)
	}
	s.tok, s.signed = signed, now
	return s.tok, true, nil
}

// invalidate drops tok from the cache if it is still the current token,
// so the next call signs a fresh one.
func (s *jwtSource) invalidate(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == tok {
		s.tok = ""
	}
}
