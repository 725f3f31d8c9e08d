package verify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/devicechecktest"
)

// A backend checks every request's attestation with Apple before its
// handler runs. In production Config.BaseURL is left empty (Apple's
// production server) and the key comes from LoadPrivateKey; here a fake
// Apple server stands in.
func ExampleMiddleware() {
	key, apple := exampleApple() // verify.LoadPrivateKey("AuthKey_ABC123DEFG.p8") in real life
	defer apple.Close()

	client, err := verify.NewClient(verify.Config{
		TeamID: "TEAMID1234", KeyID: "ABC123DEFG", Key: key,
		BaseURL: apple.URL, // omit for production
	})
	if err != nil {
		log.Fatal(err)
	}
	v := &verify.Verifier{Client: client, MaxAge: 5 * time.Minute}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, _ := verify.FromContext(r.Context())
		fmt.Fprintf(w, "hello, device %s", res.Kind)
	})
	handler := verify.Middleware(api, verify.MiddlewareOptions{Verifier: v})

	// What codex app-server sends.
	value, _ := header.Encode(header.Value{Kind: header.KindDeviceCheck, Token: apple.IssueToken(), GeneratedAt: time.Now()})
	for _, h := range []string{`{"v":1,"s":0,"t":"` + value + `"}`, `{"v":1,"s":1}`} {
		req := httptest.NewRequest("GET", "/api/", nil)
		req.Header.Set("x-oai-attestation", h)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		fmt.Println(rec.Code, rec.Body.String())
	}
	// Output:
	// 200 hello, device dc
	// 401 {"error":"attestation_required","reason":"client_status","status":"timeout"}
}

// Without the middleware: verify one header value. The zero-value
// Verifier already refuses a token seen before and a token older than
// DefaultMaxAge.
func ExampleVerifier_Verify() {
	v := &verify.Verifier{AllowDev: true} // development only: no Apple, dev tokens accepted
	token := make([]byte, 32)
	rand.Read(token)
	value, _ := header.Encode(header.Value{Kind: header.KindDev, Token: token, GeneratedAt: time.Now()})
	res, err := v.Verify(context.Background(), value)
	fmt.Println(res.Kind, res.Valid, res.AppleChecked, err)
	_, err = v.Verify(context.Background(), value)
	fmt.Println(verify.Reason(err), verify.Rejected(err))
	// Output:
	// dev true false <nil>
	// replay true
}

// exampleApple returns a new key and a fake Apple server that trusts it.
func exampleApple() (*ecdsa.PrivateKey, *devicechecktest.Server) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	return key, devicechecktest.NewServer(&key.PublicKey, "TEAMID1234", "ABC123DEFG")
}

// Name each request's client, so that calls to Apple are shared in turn
// between clients: a flood of forged tokens from one address does not
// refuse everyone else. A direct caller of Verify names it with
// WithClient.
func ExampleClientKey() {
	key, apple := exampleApple()
	defer apple.Close()
	client, err := verify.NewClient(verify.Config{TeamID: "TEAMID1234", KeyID: "ABC123DEFG", Key: key, BaseURL: apple.URL})
	if err != nil {
		log.Fatal(err)
	}
	byAddress := verify.ClientKey(func(r *http.Request) string {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		return host
	})
	handler := verify.Middleware(http.NotFoundHandler(), verify.MiddlewareOptions{Verifier: &verify.Verifier{Client: client}, Client: byAddress})
	_ = handler

	ctx := verify.WithClient(context.Background(), "account-42")
	value, _ := header.Encode(header.Value{Kind: header.KindDeviceCheck, Token: apple.IssueToken(), GeneratedAt: time.Now()})
	_, err = (&verify.Verifier{Client: client}).Verify(ctx, value)
	fmt.Println(err, verify.ClientFromContext(ctx))
	// Output: <nil> account-42
}
