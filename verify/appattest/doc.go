// Package appattest verifies Apple App Attest attestations and
// assertions locally, with no call to Apple: an app attests a Secure
// Enclave key once (VerifyAttestation returns the Key to store), then
// signs each request with it (VerifyAssertion returns its counter, which
// a Window per key judges).
//
//	key, err := appattest.VerifyAttestation(object, appattest.AttestationOptions{
//		AppIDs:         []string{"TEAMID1234.com.example.app"},
//		ClientDataHash: sha256OfChallenge,
//		KeyID:          keyIDTheAppSent,
//	})
//	…store key.PublicKey, key.AppID, key.Environment, key.Root, key.Receipt…
//
//	a, err := appattest.VerifyAssertion(assertion, key, clientDataHash)
//	…err = window.Accept(a.Counter, 0) under the key's lock…
//
// # What VerifyAttestation checks, in order
//
// Cheap structural checks come first, so that a flood of forged objects
// costs parsing and hashing; the signature checks of the certificate
// chain come last. Every check Apple's documentation lists is made; only
// their order differs.
//
//  1. bad_format: the object is at most MaxAttestationSize bytes of one
//     CBOR map (definite lengths, no tags, no duplicate keys, bounded
//     nesting, nothing after it) {fmt: "apple-appattest", attStmt: {x5c:
//     [2 to 4 certificates], receipt: bytes}, authData: bytes}.
//  2. bad_auth_data: authData is rpIdHash (32) ‖ flags (1) ‖ counter (4)
//     ‖ AAGUID (16) ‖ credential id length (2, = 32) ‖ credential id ‖ a
//     COSE key that is exactly {1: 2, 3: -7, -1: 1, -2: x, -3: y} (its
//     CBOR encoding is its extent) ‖ optionally one well-formed CBOR
//     map, the extensions. The bytes after the COSE key are read as the
//     extensions map whatever the ED flag says: Apple's own 2026 sample
//     appends the map without it. Anything else after the COSE key is
//     refused.
//  3. bad_app_id: rpIdHash is SHA-256 of one of AppIDs.
//  4. bad_counter: the counter is 0.
//  5. bad_aaguid: the AAGUID is "appattestdevelop" (development) or
//     "appattest" and seven zero bytes (production).
//  6. bad_environment: that environment is accepted (Production only
//     unless Environments says otherwise).
//  7. bad_key_id: the credential id is the KeyID the client sent (when
//     given).
//  8. bad_chain: the certificates parse and the leaf's key is ECDSA P-256.
//  9. bad_key_id: SHA-256 of the leaf's key (X9.62 uncompressed) is the
//     credential id.
//  10. bad_public_key: the COSE key is the leaf's key.
//  11. bad_nonce: the leaf's extension 1.2.840.113635.100.8.2 holds
//     SHA-256(authData ‖ ClientDataHash). ClientDataHash is whatever the
//     app passed to attestKey; any length is accepted (Apple's samples
//     pass 21 and 24 raw bytes).
//  12. expired, bad_chain: the chain verifies at Now (a parameter:
//     leaves live from three days to about a year) to one of Roots:
//     Apple's App Attestation Root CA, pinned by the SHA-256 of its DER
//     (AppleRootFingerprint), unless the caller passes others. Any
//     extended key usage is allowed: Apple's 2026 leaves carry one of
//     their own.
//  13. bad_auth_data: the extensions map decodes, with text keys and no
//     key twice. It is decoded only now, once the object verified: a
//     map made to allocate much costs a forged object nothing.
//
// The Key then says where it came from (Root: "apple", or the name of
// the caller's root, e.g. devattest's "development"), its environment,
// Apple's receipt (not parsed), the leaf's key-policy extension
// 1.2.840.113635.100.8.6 when present (the Mac's requirement of Full
// Security mode and SIP, as certified DER) and the authData extensions
// when present (launch validation category, bundle version), as data.
//
// # What VerifyAssertion checks, in order
//
//  1. bad_format: at most MaxAssertionSize bytes of one CBOR map
//     {signature: bytes, authenticatorData: bytes}, both non-empty.
//  2. bad_auth_data: authenticatorData is rpIdHash ‖ flags ‖ counter,
//     optionally followed by one well-formed CBOR map (iOS 27 and macOS
//     27 append their extensions and set AT and ED without attested
//     credential data, so the flags are not consulted).
//  3. bad_app_id: rpIdHash is SHA-256 of the key's App ID.
//  4. bad_signature: the signature is a DER ECDSA P-256 signature by the
//     key of SHA-256(nonce), nonce = SHA-256(authenticatorData ‖
//     clientDataHash) — what SecKeyCreateSignature makes of the nonce.
//  5. bad_auth_data: the extensions map, when present, decodes with
//     text keys and no key twice; as for attestations, only once the
//     signature verified.
//
// # What the caller must still do
//
// Package registration does the first two over HTTP, and verify.Verifier
// the next three for attestd's header (kind "aa"); a server with its own
// protocol does them itself with this package's stores:
//
//   - Make the challenge: random, single-use and short-lived (a
//     ChallengeStore: MemoryChallengeStore, or appattestredis shared by
//     instances); pass ClientDataHash as the app computed it from it.
//   - Keep the key (public key, App ID, environment, root, receipt) in a
//     KeyStore (Register), and refuse keys from a root other than Apple's
//     unless development keys are wanted (the development root is never
//     trusted unless passed in Roots; KeyRecord.Development says so).
//   - Judge the counter: KeyStore.Accept applies the key's Window (accept
//     each counter once within a sliding window below the highest seen;
//     requests arrive out of order) atomically with the key's status, and
//     only after VerifyAssertion, so a forged assertion spends nothing.
//     When Accept fails without a refusal (a shared store's reply lost)
//     and the request is answered "could not check", KeyStore.Release
//     gives the counter back, so the retry is not a replay.
//   - Revoke: KeyStore.Revoke; a revoked key's assertions are refused and
//     it cannot be registered again. Apple's receipt can be exchanged for a
//     fraud metric (not done here).
//   - Bind the assertion to the request: compute clientDataHash from the
//     request on the server, never take it from the client.
//
// AttestedKey makes every check of VerifyAttestation but the nonce's, for
// tools that have an attestation without its challenge; it never makes a
// key fit to register.
//
// # Reasons
//
// Every refusal is an *Error wrapping one sentinel; Reason names it for
// logs, metrics and JSON answers:
//
//	reason           sentinel            meaning
//	bad_format       ErrBadFormat        not an attestation/assertion object
//	bad_auth_data    ErrBadAuthData      authenticator data not laid out as Apple's
//	bad_app_id       ErrBadAppID         rpIdHash of no accepted App ID
//	bad_counter      ErrBadCounter       an attestation's counter is not 0
//	bad_aaguid       ErrBadAAGUID        neither Apple AAGUID
//	bad_environment  ErrBadEnvironment   environment not accepted
//	bad_key_id       ErrBadKeyID         credential id is not the key's (or the claimed) id
//	bad_public_key   ErrBadPublicKey     COSE key differs from the certificate's
//	bad_nonce        ErrBadNonce         nonce missing, malformed or not SHA-256(authData ‖ clientDataHash)
//	bad_chain        ErrBadChain         certificates unparsable, leaf not P-256, or not chained to a given root
//	expired          ErrExpired          a certificate is expired, or not yet valid, at Now
//	bad_signature    ErrBadSignature     assertion signature not valid
//	replay           ErrReplay           counter used before, or below the window
//	unknown_key      ErrUnknownKey       no key with this id registered (a KeyStore)
//	revoked_key      ErrKeyRevoked       the key was revoked (a KeyStore)
//	key_conflict     ErrKeyConflict      the id is registered with another key, App ID, environment or root
//
// A caller's mistake (no App ID, no clientDataHash, an unknown
// environment, a root without a name or a non-Apple root named "apple",
// a key without its public key or App ID) is a plain error; Reason
// gives "error" and Rejected false.
//
// Objects are not secrets, but this package never puts their bytes in
// errors. Packages appattesttest (a test CA issuing objects of Apple's
// structure) and devattest (development keys, certified by a root that
// ships in this repository and proves nothing) make objects to verify.
package appattest
