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
// block.go, session.go, identity.go, launchd.go, peer.go) and a *_darwin.go
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
//     for the slot up to their own deadline.
//   - The completion block is released exactly once, only after Apple has
//     called it (see blockRelease), so a completion that arrives after a
//     timeout runs against live memory: it copies the NSData bytes, sends
//     on a channel with room for one value that nobody may read any more,
//     and is then freed. A token that arrives late is discarded. If Apple
//     never calls the block, it and its closure leak; that is the price of
//     never freeing memory Apple may still call.
//   - Objective-C work runs inside an autorelease pool
//     (objc_autoreleasePoolPush/Pop) on a locked OS thread; the completion
//     block, which runs on one of Apple's threads, has a pool of its own.
//   - DeviceCheck's NSError becomes a *DCError whose chain holds a
//     *provider.Error with Apple's code (data.dcErrorCode on the wire) and
//     the reason provider_error, or unsupported for featureUnsupported.
//   - The peer check fails closed: any failure to read the peer's audit
//     token or to evaluate its code signature rejects the peer. It comes on
//     top of the uid check, which the socket code does on every OS.
//   - ActivateSocket hands each descriptor launchd made to
//     net.FileListener and frees launchd's malloc'd array. With the plist's
//     SecureSocketWithKey set to ATTESTD_SOCKET, launchd puts the socket in
//     a private directory and exports its path in that variable to the
//     user's session, where clients (bridge/socket.DefaultPath) find it.
package darwin
