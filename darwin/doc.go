// Package darwin holds every call into Apple frameworks and libSystem,
// made through purego without cgo: DeviceCheck (DCDevice and App Attest's
// DCAppAttestService), the login Keychain item that keeps the App Attest
// key id, the GUI-session check, the helper's own signing identity,
// launchd socket activation and the peer code-signing check. On other
// systems each entry point returns an error that wraps ErrUnsupported.
//
// # Layout
//
// The exported API is in darwin.go, appattest.go and keychain.go. Each
// concern has a portable file that holds its logic and is tested on every
// OS (devicecheck.go, dcerror.go, appattest.go, aaerror.go, keychain.go,
// calls.go, session.go, identity.go, launchd.go, peer.go, mainloop.go,
// headers.go) and a *_darwin.go file with the thin purego layer
// (load_darwin.go binds the libraries, completion_darwin.go holds the
// completion-block machinery DCDevice and App Attest share);
// darwin_other.go returns ErrUnsupported. Every
// purego call in a *_darwin.go file carries the C or Objective-C
// declaration it calls, and its Go types follow that declaration: BOOL and
// Boolean are bool (purego reads the low byte), NSInteger and CFIndex
// int64, NSUInteger uint64, OSStatus and int int32, uint32_t uint32, and
// object and CF references uintptr (objc.ID).
//
// # Decisions
//
//   - Nothing is loaded at package init beyond what purego's objc package
//     loads itself (libobjc). Foundation, DeviceCheck, Security and
//     CoreFoundation are opened with dlopen on first use, under a
//     sync.Once, before any objc.GetClass. Selectors are package-level
//     vars, registered once.
//   - DCDevice is never touched before Security's SessionGetInfo reports
//     graphic access for the caller's security session: without a GUI
//     login session DeviceCheck's XPC connection traps the whole process.
//     The check gives provider.ErrNoGUISession instead.
//   - One generateToken call is outstanding at a time (calls.go's
//     serialCalls, which App Attest and the Keychain item use too). The
//     slot is freed when Apple calls the completion handler, not when
//     Generate gives up, so a hung XPC call never piles up further
//     requests; later calls wait for the slot up to their own deadline. A
//     completion that arrives after a timeout copies the NSData bytes and
//     sends on a channel with room for one value that nobody reads any
//     more; the late token is discarded.
//   - The completion block is released as soon as the message send
//     returns (blocks, below), not after Apple has called it.
//   - Objective-C, Security and CoreFoundation work (loading the
//     services, isSupported, every request, the Keychain calls,
//     validateGuest, selfSignature) runs inside an autorelease pool
//     (objc_autoreleasePoolPush/Pop) on a locked OS thread; the
//     completion block, which runs on one of Apple's threads, has a pool
//     of its own.
//   - errno comes back with the call that set it: getsockopt is called
//     through purego.SyscallN, whose darwin trampoline reads errno
//     (__error) right after the call, on the same thread, before any Go
//     code runs there. A second call to __error afterwards could read a
//     value the Go runtime's own libc calls left on that thread. Only the
//     low 32 bits of the word SyscallN returns are errno (a C int).
//   - Values from Apple's headers live in headers.go and are checked
//     against literals quoted from the named SDK headers in
//     headers_test.go; SOL_LOCAL and LOCAL_PEERTOKEN come from
//     golang.org/x/sys/unix. signatures_test.go checks every purego
//     binding, data symbol, selector and class against declarations
//     quoted from the SDK headers in the test, not against the comments
//     in the code: each C function's parameter and result types, and each
//     message send's result type, its number of arguments and the Go type
//     of each (an object, a SEL, a block), and the shape of the block
//     funcs the layer makes.
//   - DeviceCheck's NSError becomes a *DCError whose chain holds a
//     *provider.Error with Apple's code (data.dcErrorCode on the wire) and
//     the reason provider_error, or unsupported for featureUnsupported.
//   - The peer check fails closed: any failure to read the peer's audit
//     token or to evaluate its code signature rejects the peer. It comes on
//     top of the uid check, which the socket code does on every OS.
//   - ActivateSocket hands each descriptor launchd made to
//     net.FileListener and frees launchd's malloc'd array. With the plist's
//     SecureSocketWithKey set to the host's own key (ATTESTD_SOCKET_ and
//     the label), launchd puts the socket in a private directory and
//     exports its path in that variable to the user's session, where
//     clients find it (bridge/socket.Resolve).
//
// # App Attest and the Keychain item
//
// Bound: the class DCAppAttestService, looked up by name (objc_getClass),
// its class property sharedService, and the instance methods isSupported,
// generateKeyWithCompletionHandler:,
// attestKey:clientDataHash:completionHandler: and
// generateAssertion:clientDataHash:completionHandler: (DCAppAttestService.h);
// the DCError codes of their NSErrors (DCError.h); Security's
// SecItemCopyMatching, SecItemAdd, SecItemUpdate and SecItemDelete
// (SecItem.h), with CoreFoundation dictionaries whose kSec… keys are read
// as the exported CFStringRef data symbols they are.
//
//   - The class exists in the SDK from macOS 11, but Apple supports App
//     Attest on the Mac only from macOS 27: isSupported is the authority.
//     Before anything is sent, the GUI-session check must pass (App Attest
//     lives in the same framework as DCDevice, whose XPC connection traps
//     the process without one, so the same trap is assumed), the class
//     must exist, the class must respond to
//     sharedService and the shared instance to every method attestd sends
//     (respondsToSelector:); any of these missing is reason unsupported.
//     NewAppAttest fails, as NewDeviceCheck does, where isSupported is
//     false; AppAttestSupported and AppAttestService.Supported report it.
//   - Threading is DCDevice's: each request is sent on a locked OS thread
//     inside an autorelease pool, its completion block follows the block
//     rules below (completion_darwin.go is shared), and the handler copies
//     the key id (NSString) or the object (NSData) in a pool of its own.
//     The key id and clientDataHash are passed as CFString and CFData,
//     toll-free bridged to NSString and NSData, and released when the send
//     returns: a method that uses an argument later retains it. Each
//     method has its own serialCalls, so a hung attestKey (the one call
//     that reaches Apple's server) never holds up assertions. RunMainLoop
//     covers these handlers as it covers DCDevice's; OnCompletion reports
//     where each ran.
//   - Arguments are checked before Apple sees them: a key id must be in
//     the form generateKey gives (standard base64 of 32 bytes, ParseKeyID),
//     since the header carries it as 32 bytes, and clientDataHash must be
//     32 bytes, since attestd always passes a SHA-256 digest (Apple's
//     samples pass other sizes; the server side accepts them, this side
//     never makes them).
//   - Errors: App Attest's NSErrors become *AppAttestError. No new
//     data.reason values: featureUnsupported is unsupported, every other
//     code provider_error, each with data.dcErrorCode and a hint of its own
//     (the same code means something else for DCDevice). Callers tell the
//     codes that change what they do with errors.Is: ErrInvalidKey (make a
//     new key and register it again), ErrServerUnavailable (attest again
//     later with the same key and clientDataHash). A code this attestd
//     does not know, such as the one macOS 27 added for a key
//     access-control policy the Mac cannot enforce, matches
//     ErrUnknownDCErrorCode and carries its number.
//   - The key id lives in the user's login keychain (the file-based one;
//     the data-protection keychain would need a keychain-access-groups
//     entitlement): a generic password whose service is the host's
//     LaunchAgent label, else the bundle id, else "attestd"
//     (KeychainService), whose account is "appattest-key-id" and label
//     "attestd App Attest key id", and whose data is the key id's text.
//     The key id is no secret (a hash of a public key); the Keychain is
//     Apple's advice because the item survives app updates. Set adds the
//     item, or updates its data when it exists; Delete of a missing item
//     succeeds. The item's access list trusts the app that made it (its
//     designated requirement), so the signed helper reads it without a
//     prompt across updates. Get also sets kSecUseAuthenticationUI to
//     kSecUseAuthenticationUIFail (deprecated from macOS 11 but exported;
//     bound as optional), though public reports say that does not reach
//     the file-based keychain's own Allow/Deny panel; only the
//     process-wide, deprecated SecKeychainSetUserInteractionAllowed does,
//     and attestd leaves that alone. So a build the item does not trust
//     (an ad-hoc development build after a rebuild) may raise a panel.
//     Each SecItem call blocks, so it runs on a goroutine of its own under
//     serialCalls: a call still blocked after the timeout (5 s) fails,
//     later calls wait for it, and the blocked goroutine stays until
//     Security returns (the user answers the panel).
//
// What a Mac must confirm (the Linux tests cannot): isSupported is true on
// macOS 27 for the signed helper with its provisioning profile, and false
// before; the value of macOS 27's new DCError code and when it comes (then
// give it a name and hint in dcCodes and aaHints); that App Attest's
// completion handlers do not need the main queue (attestd selftest
// reports where they ran); assertion latency, cold and warm, against the
// app-server's ~100 ms (attestd probe); that the Keychain item is read
// without a prompt after an update of the Developer-ID-signed helper,
// what an ad-hoc development build sees instead (a panel, or
// errSecInteractionNotAllowed / errSecAuthFailed), and that a reinstall or
// a restore invalidates the key (invalidKey) while an update keeps it.
//
// # Blocks
//
// The Blocks ABI (clang's Block-ABI-Apple) makes the callee responsible
// for a block it keeps: callers may pass a block that lives on their
// stack, so a method that calls the block later must copy it
// (_Block_copy; ARC's objc_retainBlock does the same), and releases its
// copy when done. purego's objc.NewBlock returns a heap block with one
// reference, ours; generateTokenWithCompletionHandler: keeps the handler
// past the send, so it holds its own reference from then on, and we
// release ours as soon as the send returns. When Apple drops the block,
// the last release runs the block's dispose helper, which deletes the Go
// closure from purego's table. A handler Apple calls synchronously runs
// while our reference still holds; one Apple never calls and never
// releases is Apple's to keep. This replaced a scheme that released the
// block only after Apple called it, which leaked every block Apple never
// called and needed a state machine to decide who released it.
//
// # The main run loop
//
// Where Apple runs the completion handler is not documented. If it were
// ever posted to the main dispatch queue or the main run loop, a Go
// process, whose main thread never runs either, would time out on every
// call. No Mac here can show that this never happens, so the commands
// that may ask DeviceCheck for tokens (serve, bridge, doctor, selftest,
// probe) run the main thread's run loop: cmd/attestd locks the main
// goroutine to the main thread in init, and RunMainLoop runs the command
// on another goroutine while the main thread sits in CFRunLoopRun, which
// also drains the main queue. Its cost is one parked thread. When the
// command returns, a function posted to the main queue stops the loop
// (posting it cannot race with the loop starting). attestd selftest
// reports where the handler ran (main thread or not, the dispatch queue's
// label, the thread) and whether the main queue is serviced
// (PingMainQueue), and names the main-queue case; if Macs show it never
// happens, RunMainLoop can go.
package darwin
