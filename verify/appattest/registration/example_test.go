package registration_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/devattest"
	"github.com/attestd/attestd/verify/appattest/registration"
)

// A server mounts the registration handler beside its API; an app
// registers its key once, then each request carries an App Attest value
// that the Verifier checks with no call to Apple. Memory stores serve one
// instance (appattestredis shares them); the development root is trusted
// here only because the "app" is a devattest key.
func Example() {
	keys, challenges := &appattest.MemoryKeyStore{}, &appattest.MemoryChallengeStore{}
	reg, err := registration.NewHandler(registration.Config{
		Keys: keys, Challenges: challenges,
		AppIDs:       []string{"TEAMID1234.com.example.app"},
		Environments: []appattest.Environment{appattest.Development},
		Roots:        []*appattest.Root{devattest.Root()}, // never in production
	})
	if err != nil {
		panic(err)
	}
	v := &verify.Verifier{Keys: keys, Kinds: []string{header.KindAppAttest}, AllowDev: true}
	mux := http.NewServeMux()
	mux.Handle("/appattest/", reg)
	mux.Handle("/api/", verify.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, _ := verify.FromContext(r.Context())
		fmt.Fprintf(w, "hello, %s key, counter %d", res.Environment, res.Counter)
	}), verify.MiddlewareOptions{Verifier: v}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// The app: a challenge, its key attested for it, the registration.
	app, _ := devattest.NewKey("TEAMID1234.com.example.app")
	var c struct{ Challenge string }
	post(srv.URL+"/appattest/challenge", "", &c)
	raw, _ := base64.RawURLEncoding.DecodeString(c.Challenge)
	cdh := sha256.Sum256(raw)
	attestation, _ := app.Attest(cdh[:])
	body, _ := json.Marshal(map[string]string{"keyId": base64.StdEncoding.EncodeToString(app.ID()),
		"attestation": base64.StdEncoding.EncodeToString(attestation), "challenge": c.Challenge})
	var registered struct{ Environment, Status string }
	fmt.Println("register:", post(srv.URL+"/appattest/register", string(body), &registered), registered.Status)

	// Each request: a fresh nonce, the assertion over the value's
	// clientDataHash.
	value := header.Value{Kind: header.KindAppAttest, KeyID: app.ID(), Nonce: make([]byte, header.NonceLen), GeneratedAt: time.Now()}
	rand.Read(value.Nonce)
	sum := header.AppAttestClientDataHash(value.KeyID, value.GeneratedAt, value.Nonce)
	value.Token, _ = app.Assert(sum[:])
	s, _ := header.Encode(value)
	for range 2 {
		req, _ := http.NewRequestWithContext(context.Background(), "POST", srv.URL+"/api/", nil)
		req.Header.Set(verify.HeaderName, s)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.Status, strings.TrimSpace(string(b)))
	}
	// Output:
	// register: 201 active
	// 200 OK hello, development key, counter 1
	// 403 Forbidden {"error":"attestation_rejected","reason":"replay"}
}

// post sends body and decodes the JSON answer into out; it returns the
// status code.
func post(url, body string, out any) int {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(out)
	return resp.StatusCode
}
