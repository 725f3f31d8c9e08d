package devicechecktest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/devicechecktest"
)

// A backend's test points its verify.Client at the fake instead of Apple.
func ExampleNewServer() {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	apple := devicechecktest.NewServer(&key.PublicKey, "TEAMID1234", "ABC123DEFG")
	defer apple.Close()
	apple.ValidTokens(func(tok []byte) bool { return string(tok) != "forged" })

	client, _ := verify.NewClient(verify.Config{TeamID: "TEAMID1234", KeyID: "ABC123DEFG", Key: key, BaseURL: apple.URL})
	defer client.CloseIdleConnections()
	ctx := context.Background()
	fmt.Println(client.ValidateDeviceToken(ctx, []byte("genuine")))
	err := client.ValidateDeviceToken(ctx, []byte("forged"))
	fmt.Println(errors.Is(err, verify.ErrBadDeviceToken))
	fmt.Println(len(apple.Requests()), "requests,", apple.JWTs(), "JWT signed")
	// Output:
	// <nil>
	// true
	// 2 requests, 1 JWT signed
}
