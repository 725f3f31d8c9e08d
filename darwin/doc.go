// Package darwin holds every call into Apple frameworks and libSystem,
// made through purego without cgo: DeviceCheck, the GUI-session check, the
// helper's own signing identity, launchd socket activation and the peer
// code-signing check. On other systems each entry point returns an error
// that wraps ErrUnsupported.
//
// # Layout
//
// The exported API is in darwin.go. Each concern has a portable file that
// holds its logic and is tested on every OS (devicecheck.go, dcerror.go,
// session.go, identity.go, launchd.go, peer.go, mainloop.go, headers.go) and a *_darwin.go
// file with the thin purego layer (load_darwin.go binds the libraries);
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
//   - One generateToken call is outstanding at a time. The slot is freed
//     when Apple calls the completion handler, not when Generate gives up,
//     so a hung XPC call never piles up further requests; later calls wait
//     for the slot up to their own deadline. A completion that arrives
//     after a timeout copies the NSData bytes and sends on a channel with
//     room for one value that nobody reads any more; the late token is
//     discarded.
//   - The completion block is released as soon as the message send
//     returns (blocks, below), not after Apple has called it.
//   - Objective-C, Security and CoreFoundation work (loadDevice, supported,
//     request, validateGuest, selfSignature) runs inside an autorelease
//     pool (objc_autoreleasePoolPush/Pop) on a locked OS thread; the
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
//     binding, selector and class against declarations quoted from the
//     SDK headers in the test, not against the comments in the code.
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
