package verify

import (
	"crypto/ecdsa"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Apple accepts an authorization token for up to an hour after its iat.
// One is reused for DefaultJWTRefresh, then replaced.
const (
	DefaultJWTRefresh = 20 * time.Minute
	maxJWTRefresh     = 50 * time.Minute
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

	mu  sync.Mutex
	tok string
	iat time.Time
}

func signToken(t *jwt.Token, key *ecdsa.PrivateKey) (string, error) { return t.SignedString(key) }

// token returns the cached bearer token, or signs a new one when the cached
// one is older than refresh or has been invalidated.
func (s *jwtSource) token() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	// A clock that stepped backwards makes the cached iat lie; re-sign.
	if s.tok != "" && now.Sub(s.iat) < s.refresh && !now.Before(s.iat) {
		return s.tok, nil
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": s.teamID,
		"iat": now.Unix(),
	})
	t.Header["kid"] = s.keyID
	signed, err := s.sign(t, s.key)
	if err != nil {
		return "", fmt.Errorf("sign authorization token: %w", err)
	}
	// Truncate like the iat claim so the age test above matches Apple's view.
	s.tok, s.iat = signed, time.Unix(now.Unix(), 0)
	return s.tok, nil
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
