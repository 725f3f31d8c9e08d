package appattest_test

import (
	"crypto/sha256"
	"fmt"

	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/devattest"
)

// A key is attested once, then each request's assertion is checked with
// it, and its counter with the key's Window. Development keys verify
// only because the development root is passed explicitly.
func Example() {
	const appID = "TEAMID1234.com.example.app"
	app, _ := devattest.NewKey(appID) // on a device: DCAppAttestService
	challenge := sha256.Sum256([]byte("a random, single-use challenge from the server"))
	attestation, _ := app.Attest(challenge[:])

	key, err := appattest.VerifyAttestation(attestation, appattest.AttestationOptions{
		AppIDs:         []string{appID},
		ClientDataHash: challenge[:],
		Environments:   []appattest.Environment{appattest.Development},
		KeyID:          app.ID(),
		Roots:          []*appattest.Root{appattest.AppleRoot(), devattest.Root()},
	})
	if err != nil {
		fmt.Println("refused:", appattest.Reason(err))
		return
	}
	fmt.Println("attested:", key.Environment, "key from the", key.Root, "root")

	var window appattest.Window
	request := sha256.Sum256([]byte("POST /api/thing {…}"))
	assertion, _ := app.Assert(request[:])
	for range 2 { // the same assertion twice
		a, err := appattest.VerifyAssertion(assertion, key, request[:])
		if err == nil {
			err = window.Accept(a.Counter, appattest.DefaultWindowSize)
		}
		if err != nil {
			fmt.Println("assertion refused:", appattest.Reason(err))
		} else {
			fmt.Println("assertion valid, counter", a.Counter)
		}
	}
	// Output:
	// attested: development key from the development root
	// assertion valid, counter 1
	// assertion refused: replay
}
