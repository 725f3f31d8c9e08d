//go:build ignore

// gen_root makes the development root and intermediate committed in
// development-only/. Run it from this directory only to replace them
// (every development key registered anywhere then stops verifying):
//
//	go run gen_root.go
package main

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"log"
	"os"
	"time"

	"github.com/attestd/attestd/verify/appattest/internal/issuer"
)

func main() {
	notBefore := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	notAfter := time.Date(2126, 1, 1, 0, 0, 0, 0, time.UTC)
	ca, err := issuer.NewCA(issuer.Names{
		Root:         "attestd DEVELOPMENT App Attestation Root CA - proves nothing",
		Intermediate: "attestd DEVELOPMENT App Attestation CA 1 - proves nothing",
		Organization: "attestd development (not Apple)",
	}, notBefore, notAfter)
	if err != nil {
		log.Fatal(err)
	}
	write("development-only/root.pem", "CERTIFICATE", ca.Root.Raw)
	write("development-only/root-key.pem", "PRIVATE KEY", pkcs8(ca.RootKey))
	write("development-only/intermediate.pem", "CERTIFICATE", ca.Intermediate.Raw)
	write("development-only/intermediate-key.pem", "PRIVATE KEY", pkcs8(ca.IntermediateKey))
}

func pkcs8(k *ecdsa.PrivateKey) []byte {
	b, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		log.Fatal(err)
	}
	return b
}

func write(name, typ string, der []byte) {
	if err := os.WriteFile(name, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
		log.Fatal(err)
	}
}
