package darwin

import (
	"bytes"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/attestd/attestd/bridge/provider"
)

// Libraries, opened on first use. dyld finds the frameworks in its shared
// cache, so these paths work even though no file exists there on disk.
const (
	libSystemPath      = "/usr/lib/libSystem.B.dylib"
	libobjcPath        = "/usr/lib/libobjc.A.dylib"
	foundationPath     = "/System/Library/Frameworks/Foundation.framework/Foundation"
	coreFoundationPath = "/System/Library/Frameworks/CoreFoundation.framework/CoreFoundation"
	securityPath       = "/System/Library/Frameworks/Security.framework/Security"
	deviceCheckPath    = "/System/Library/Frameworks/DeviceCheck.framework/DeviceCheck"
)

// lib is one dlopen'ed library with its symbols bound to Go func vars.
type lib struct {
	path   string
	handle uintptr
	err    error
}

func open(path string) *lib {
	l := &lib{path: path}
	l.handle, l.err = purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if l.err != nil {
		l.err = fmt.Errorf("dlopen %s: %w", path, l.err)
	}
	return l
}

// fn binds the C function name to *fptr. It records the first failure in
// l.err and leaves *fptr nil; callers check l.err once after binding.
func (l *lib) fn(fptr any, name string) {
	if l.err != nil {
		return
	}
	sym, err := purego.Dlsym(l.handle, name)
	if err != nil {
		l.err = fmt.Errorf("%s: dlsym %s: %w", l.path, name, err)
		return
	}
	purego.RegisterFunc(fptr, sym)
}

// addr returns the address of the exported variable or struct name.
func (l *lib) addr(name string) uintptr {
	if l.err != nil {
		return 0
	}
	sym, err := purego.Dlsym(l.handle, name)
	if err != nil {
		l.err = fmt.Errorf("%s: dlsym %s: %w", l.path, name, err)
		return 0
	}
	return sym
}

// constant returns the value of the exported pointer-sized constant name,
// such as a `const CFStringRef`.
func (l *lib) constant(name string) uintptr {
	sym := l.addr(name)
	if sym == 0 {
		return 0
	}
	// sym is the address of a C global that holds the value; read it
	// through a pointer to sym so that no uintptr becomes a Go pointer.
	return **(**uintptr)(unsafe.Pointer(&sym))
}

// optionalConstant is constant for a symbol the layer can do without: a
// missing one gives 0 and is not recorded as a failure.
func (l *lib) optionalConstant(name string) uintptr {
	if l.err != nil {
		return 0
	}
	sym, err := purego.Dlsym(l.handle, name)
	if err != nil || sym == 0 {
		return 0
	}
	return **(**uintptr)(unsafe.Pointer(&sym))
}

// libSystem: launchd, sockets, memory.
var (
	systemOnce sync.Once
	systemErr  error

	// int launch_activate_socket(const char *name, int **fds, size_t *cnt);
	launchActivateSocket func(name string, fds **int32, cnt *uint64) int32
	// void free(void *ptr);
	libcFree func(ptr unsafe.Pointer)
	// int pthread_main_np(void);
	pthreadMainNP func() int32
	// int pthread_threadid_np(pthread_t thread, uint64_t *thread_id);
	pthreadThreadIDNP func(thread uintptr, threadID *uint64) int32
	// const char *dispatch_queue_get_label(dispatch_queue_t queue);
	dispatchQueueGetLabel func(queue uintptr) string
	// void dispatch_async_f(dispatch_queue_t queue, void *context, dispatch_function_t work);
	dispatchAsyncF func(queue, context, work uintptr)

	// getsockoptSym is the address of getsockopt, called with
	// purego.SyscallN so that the errno it sets comes back with the call
	// (see peerAuditToken):
	// int getsockopt(int socket, int level, int option_name,
	//     void *restrict option_value, socklen_t *restrict option_len);
	getsockoptSym uintptr
	// dispatchMainQ is the main dispatch queue, &_dispatch_main_q, which
	// dispatch_get_main_queue() returns:
	// struct dispatch_queue_s _dispatch_main_q;
	dispatchMainQ uintptr
)

func loadSystem() error {
	systemOnce.Do(func() {
		l := open(libSystemPath)
		l.fn(&launchActivateSocket, "launch_activate_socket")
		l.fn(&libcFree, "free")
		l.fn(&pthreadMainNP, "pthread_main_np")
		l.fn(&pthreadThreadIDNP, "pthread_threadid_np")
		l.fn(&dispatchQueueGetLabel, "dispatch_queue_get_label")
		l.fn(&dispatchAsyncF, "dispatch_async_f")
		getsockoptSym = l.addr("getsockopt")
		dispatchMainQ = l.addr("_dispatch_main_q")
		systemErr = l.err
	})
	return systemErr
}

// CoreFoundation.
var (
	cfOnce sync.Once
	cfErr  error

	// void CFRelease(CFTypeRef cf);
	cfRelease func(cf uintptr)
	// CFTypeID CFGetTypeID(CFTypeRef cf);
	cfGetTypeID func(cf uintptr) uint64
	// CFTypeID CFStringGetTypeID(void);
	cfStringGetTypeID func() uint64
	// CFTypeID CFNumberGetTypeID(void);
	cfNumberGetTypeID func() uint64
	// CFIndex CFStringGetLength(CFStringRef theString);
	cfStringGetLength func(str uintptr) int64
	// CFIndex CFStringGetMaximumSizeForEncoding(CFIndex length, CFStringEncoding encoding);
	cfStringGetMaximumSizeForEncoding func(length int64, encoding uint32) int64
	// Boolean CFStringGetCString(CFStringRef theString, char *buffer,
	//     CFIndex bufferSize, CFStringEncoding encoding);
	cfStringGetCString func(str uintptr, buffer []byte, bufferSize int64, encoding uint32) bool
	// CFStringRef CFStringCreateWithBytes(CFAllocatorRef alloc, const UInt8 *bytes,
	//     CFIndex numBytes, CFStringEncoding encoding, Boolean isExternalRepresentation);
	cfStringCreateWithBytes func(alloc uintptr, bytes []byte, numBytes int64, encoding uint32, isExternalRepresentation bool) uintptr
	// CFDataRef CFDataCreate(CFAllocatorRef allocator, const UInt8 *bytes, CFIndex length);
	cfDataCreate func(alloc uintptr, bytes []byte, length int64) uintptr
	// CFTypeID CFDataGetTypeID(void);
	cfDataGetTypeID func() uint64
	// CFIndex CFDataGetLength(CFDataRef theData);
	cfDataGetLength func(data uintptr) int64
	// const UInt8 *CFDataGetBytePtr(CFDataRef theData);
	cfDataGetBytePtr func(data uintptr) unsafe.Pointer
	// CFDictionaryRef CFDictionaryCreate(CFAllocatorRef allocator, const void **keys,
	//     const void **values, CFIndex numValues,
	//     const CFDictionaryKeyCallBacks *keyCallBacks,
	//     const CFDictionaryValueCallBacks *valueCallBacks);
	cfDictionaryCreate func(alloc uintptr, keys, values *uintptr, numValues int64, keyCallBacks, valueCallBacks uintptr) uintptr
	// const void *CFDictionaryGetValue(CFDictionaryRef theDict, const void *key);
	cfDictionaryGetValue func(dict, key uintptr) uintptr
	// Boolean CFNumberGetValue(CFNumberRef number, CFNumberType theType, void *valuePtr);
	// (CFNumberType is a CFIndex enum.)
	cfNumberGetValue func(number uintptr, theType int64, valuePtr *int64) bool
	// CFBundleRef CFBundleGetMainBundle(void);
	cfBundleGetMainBundle func() uintptr
	// CFStringRef CFBundleGetIdentifier(CFBundleRef bundle);
	cfBundleGetIdentifier func(bundle uintptr) uintptr
	// CFRunLoopRef CFRunLoopGetMain(void);
	cfRunLoopGetMain func() uintptr
	// void CFRunLoopRun(void);
	cfRunLoopRun func()
	// void CFRunLoopStop(CFRunLoopRef rl);
	cfRunLoopStop func(rl uintptr)

	// const CFDictionaryKeyCallBacks kCFTypeDictionaryKeyCallBacks;
	cfTypeDictionaryKeyCallBacks uintptr
	// const CFDictionaryValueCallBacks kCFTypeDictionaryValueCallBacks;
	cfTypeDictionaryValueCallBacks uintptr
	// const CFBooleanRef kCFBooleanTrue;
	cfBooleanTrue uintptr
)

func loadCoreFoundation() error {
	cfOnce.Do(func() {
		l := open(coreFoundationPath)
		l.fn(&cfRelease, "CFRelease")
		l.fn(&cfGetTypeID, "CFGetTypeID")
		l.fn(&cfStringGetTypeID, "CFStringGetTypeID")
		l.fn(&cfNumberGetTypeID, "CFNumberGetTypeID")
		l.fn(&cfStringGetLength, "CFStringGetLength")
		l.fn(&cfStringGetMaximumSizeForEncoding, "CFStringGetMaximumSizeForEncoding")
		l.fn(&cfStringGetCString, "CFStringGetCString")
		l.fn(&cfStringCreateWithBytes, "CFStringCreateWithBytes")
		l.fn(&cfDataCreate, "CFDataCreate")
		l.fn(&cfDataGetTypeID, "CFDataGetTypeID")
		l.fn(&cfDataGetLength, "CFDataGetLength")
		l.fn(&cfDataGetBytePtr, "CFDataGetBytePtr")
		l.fn(&cfDictionaryCreate, "CFDictionaryCreate")
		l.fn(&cfDictionaryGetValue, "CFDictionaryGetValue")
		l.fn(&cfNumberGetValue, "CFNumberGetValue")
		l.fn(&cfBundleGetMainBundle, "CFBundleGetMainBundle")
		l.fn(&cfBundleGetIdentifier, "CFBundleGetIdentifier")
		l.fn(&cfRunLoopGetMain, "CFRunLoopGetMain")
		l.fn(&cfRunLoopRun, "CFRunLoopRun")
		l.fn(&cfRunLoopStop, "CFRunLoopStop")
		cfTypeDictionaryKeyCallBacks = l.addr("kCFTypeDictionaryKeyCallBacks")
		cfTypeDictionaryValueCallBacks = l.addr("kCFTypeDictionaryValueCallBacks")
		cfBooleanTrue = l.constant("kCFBooleanTrue")
		cfErr = l.err
	})
	return cfErr
}

// cfString copies a CFStringRef into a Go string; 0 or a non-string gives "".
func cfString(ref uintptr) string {
	if ref == 0 || cfGetTypeID(ref) != cfStringGetTypeID() {
		return ""
	}
	size := cfStringGetMaximumSizeForEncoding(cfStringGetLength(ref), kCFStringEncodingUTF8) + 1
	if size <= 1 {
		return ""
	}
	buf := make([]byte, size)
	if !cfStringGetCString(ref, buf, size, kCFStringEncodingUTF8) {
		return ""
	}
	for i, b := range buf {
		if b == 0 {
			return string(buf[:i])
		}
	}
	return string(buf)
}

// cfInt64 reads a CFNumberRef; 0 or a non-number gives false.
func cfInt64(ref uintptr) (int64, bool) {
	if ref == 0 || cfGetTypeID(ref) != cfNumberGetTypeID() {
		return 0, false
	}
	var v int64
	ok := cfNumberGetValue(ref, kCFNumberSInt64Type, &v)
	return v, ok
}

// newCFString returns a CFStringRef the caller must CFRelease, or 0.
func newCFString(s string) uintptr {
	return cfStringCreateWithBytes(0, []byte(s), int64(len(s)), kCFStringEncodingUTF8, false)
}

// newCFData returns a CFDataRef holding a copy of b that the caller must
// CFRelease, or 0.
func newCFData(b []byte) uintptr {
	if len(b) == 0 {
		// CFDataRef CFDataCreate(CFAllocatorRef allocator, const UInt8 *bytes, CFIndex length);
		return cfDataCreate(0, nil, 0)
	}
	return cfDataCreate(0, b, int64(len(b)))
}

// cfDataBytes copies a CFDataRef's bytes; 0 or a non-data gives false.
func cfDataBytes(ref uintptr) ([]byte, bool) {
	// CFTypeID CFDataGetTypeID(void);
	if ref == 0 || cfGetTypeID(ref) != cfDataGetTypeID() {
		return nil, false
	}
	// CFIndex CFDataGetLength(CFDataRef theData);
	n := cfDataGetLength(ref)
	if n <= 0 {
		return []byte{}, true
	}
	// const UInt8 *CFDataGetBytePtr(CFDataRef theData);
	p := cfDataGetBytePtr(ref)
	if p == nil {
		return nil, false
	}
	return bytes.Clone(unsafe.Slice((*byte)(p), n)), true
}

// newCFDictionary returns an immutable CFDictionaryRef of the pairs, which
// it retains (kCFType callbacks), or 0. The caller must CFRelease it.
func newCFDictionary(keys, values []uintptr) uintptr {
	if len(keys) == 0 || len(keys) != len(values) {
		return 0
	}
	// CFDictionaryRef CFDictionaryCreate(CFAllocatorRef allocator, const void **keys,
	//     const void **values, CFIndex numValues,
	//     const CFDictionaryKeyCallBacks *keyCallBacks,
	//     const CFDictionaryValueCallBacks *valueCallBacks);
	return cfDictionaryCreate(0, &keys[0], &values[0], int64(len(keys)), cfTypeDictionaryKeyCallBacks, cfTypeDictionaryValueCallBacks)
}

// Security.framework.
var (
	secOnce sync.Once
	secErr  error

	// OSStatus SessionGetInfo(SecuritySessionId session,
	//     SecuritySessionId *sessionId, SessionAttributeBits *attributes);
	// (SecuritySessionId and SessionAttributeBits are UInt32.)
	sessionGetInfo func(session uint32, sessionID *uint32, attributes *uint32) int32
	// OSStatus SecCodeCopySelf(SecCSFlags flags, SecCodeRef *self);
	secCodeCopySelf func(flags uint32, self *uintptr) int32
	// OSStatus SecCodeCopySigningInformation(SecStaticCodeRef code, SecCSFlags flags,
	//     CFDictionaryRef *information);
	secCodeCopySigningInformation func(code uintptr, flags uint32, information *uintptr) int32
	// OSStatus SecCodeCopyGuestWithAttributes(SecCodeRef host, CFDictionaryRef attributes,
	//     SecCSFlags flags, SecCodeRef *guest);
	secCodeCopyGuestWithAttributes func(host, attributes uintptr, flags uint32, guest *uintptr) int32
	// OSStatus SecCodeCheckValidity(SecCodeRef code, SecCSFlags flags,
	//     SecRequirementRef requirement);
	secCodeCheckValidity func(code uintptr, flags uint32, requirement uintptr) int32
	// OSStatus SecRequirementCreateWithString(CFStringRef text, SecCSFlags flags,
	//     SecRequirementRef *requirement);
	secRequirementCreateWithString func(text uintptr, flags uint32, requirement *uintptr) int32
	// CFStringRef SecCopyErrorMessageString(OSStatus status, void *reserved);
	secCopyErrorMessageString func(status int32, reserved uintptr) uintptr

	// extern const CFStringRef kSecCodeInfoIdentifier, kSecCodeInfoTeamIdentifier,
	//     kSecCodeInfoFlags, kSecGuestAttributeAudit;
	kSecCodeInfoIdentifier     uintptr
	kSecCodeInfoTeamIdentifier uintptr
	kSecCodeInfoFlags          uintptr
	kSecGuestAttributeAudit    uintptr
)

func loadSecurity() error {
	secOnce.Do(func() {
		if err := loadCoreFoundation(); err != nil {
			secErr = err
			return
		}
		l := open(securityPath)
		l.fn(&sessionGetInfo, "SessionGetInfo")
		l.fn(&secCopyErrorMessageString, "SecCopyErrorMessageString")
		l.fn(&secCodeCopySelf, "SecCodeCopySelf")
		l.fn(&secCodeCopySigningInformation, "SecCodeCopySigningInformation")
		kSecCodeInfoIdentifier = l.constant("kSecCodeInfoIdentifier")
		kSecCodeInfoTeamIdentifier = l.constant("kSecCodeInfoTeamIdentifier")
		kSecCodeInfoFlags = l.constant("kSecCodeInfoFlags")
		secErr = l.err
	})
	return secErr
}

// loadPeerSecurity binds what only the peer check needs, so that a
// missing symbol there cannot break the GUI-session check.
var (
	peerSecOnce sync.Once
	peerSecErr  error
)

func loadPeerSecurity() error {
	peerSecOnce.Do(func() {
		if err := loadSecurity(); err != nil {
			peerSecErr = err
			return
		}
		l := open(securityPath)
		l.fn(&secCodeCopyGuestWithAttributes, "SecCodeCopyGuestWithAttributes")
		l.fn(&secCodeCheckValidity, "SecCodeCheckValidity")
		l.fn(&secRequirementCreateWithString, "SecRequirementCreateWithString")
		kSecGuestAttributeAudit = l.constant("kSecGuestAttributeAudit")
		peerSecErr = l.err
	})
	return peerSecErr
}

// statusError wraps a failed Security call's OSStatus with Apple's text.
func statusError(op string, status int32) error {
	return &OSStatusError{Op: op, Status: status, Msg: secErrorMessage(status)}
}

// secErrorMessage returns Security's text for status, or "".
func secErrorMessage(status int32) string {
	// CFStringRef SecCopyErrorMessageString(OSStatus status, void *reserved);
	msg := secCopyErrorMessageString(status, 0)
	if msg == 0 {
		return ""
	}
	defer cfRelease(msg)
	return cfString(msg)
}

// Security's SecItem functions and keys, for the Keychain item; bound
// apart so that a missing symbol there cannot break the other checks.
var (
	keychainOnce sync.Once
	keychainErr  error

	// OSStatus SecItemCopyMatching(CFDictionaryRef query, CFTypeRef *result);
	secItemCopyMatching func(query uintptr, result *uintptr) int32
	// OSStatus SecItemAdd(CFDictionaryRef attributes, CFTypeRef *result);
	secItemAdd func(attributes uintptr, result *uintptr) int32
	// OSStatus SecItemUpdate(CFDictionaryRef query, CFDictionaryRef attributesToUpdate);
	secItemUpdate func(query, attributesToUpdate uintptr) int32
	// OSStatus SecItemDelete(CFDictionaryRef query);
	secItemDelete func(query uintptr) int32

	// extern const CFStringRef kSecClass, kSecClassGenericPassword,
	//     kSecAttrService, kSecAttrAccount, kSecAttrLabel, kSecValueData,
	//     kSecReturnData, kSecMatchLimit, kSecMatchLimitOne;
	kSecClass                uintptr
	kSecClassGenericPassword uintptr
	kSecAttrService          uintptr
	kSecAttrAccount          uintptr
	kSecAttrLabel            uintptr
	kSecValueData            uintptr
	kSecReturnData           uintptr
	kSecMatchLimit           uintptr
	kSecMatchLimitOne        uintptr
	// extern const CFStringRef kSecUseAuthenticationUI,
	//     kSecUseAuthenticationUIFail;
	// Deprecated since macOS 11 but exported; optional, 0 when missing.
	kSecUseAuthenticationUI     uintptr
	kSecUseAuthenticationUIFail uintptr
)

func loadKeychain() error {
	keychainOnce.Do(func() {
		if err := loadSecurity(); err != nil {
			keychainErr = err
			return
		}
		l := open(securityPath)
		l.fn(&secItemCopyMatching, "SecItemCopyMatching")
		l.fn(&secItemAdd, "SecItemAdd")
		l.fn(&secItemUpdate, "SecItemUpdate")
		l.fn(&secItemDelete, "SecItemDelete")
		kSecClass = l.constant("kSecClass")
		kSecClassGenericPassword = l.constant("kSecClassGenericPassword")
		kSecAttrService = l.constant("kSecAttrService")
		kSecAttrAccount = l.constant("kSecAttrAccount")
		kSecAttrLabel = l.constant("kSecAttrLabel")
		kSecValueData = l.constant("kSecValueData")
		kSecReturnData = l.constant("kSecReturnData")
		kSecMatchLimit = l.constant("kSecMatchLimit")
		kSecMatchLimitOne = l.constant("kSecMatchLimitOne")
		kSecUseAuthenticationUI = l.optionalConstant("kSecUseAuthenticationUI")
		kSecUseAuthenticationUIFail = l.optionalConstant("kSecUseAuthenticationUIFail")
		keychainErr = l.err
	})
	return keychainErr
}

// The Objective-C runtime, Foundation and DeviceCheck.
var (
	objcOnce sync.Once
	objcErr  error

	// void *objc_autoreleasePoolPush(void);
	autoreleasePoolPush func() uintptr
	// void objc_autoreleasePoolPop(void *context);
	autoreleasePoolPop func(context uintptr)
)

// loadObjC binds the autorelease pool functions and loads Foundation,
// which DeviceCheck's classes build on.
func loadObjC() error {
	objcOnce.Do(func() {
		l := open(libobjcPath)
		l.fn(&autoreleasePoolPush, "objc_autoreleasePoolPush")
		l.fn(&autoreleasePoolPop, "objc_autoreleasePoolPop")
		if l.err != nil {
			objcErr = l.err
			return
		}
		objcErr = open(foundationPath).err
	})
	return objcErr
}

// DeviceCheck.framework, opened once for both of its classes (DCDevice,
// DCAppAttestService), after Foundation.
var (
	dcFrameworkOnce sync.Once
	dcFrameworkErr  error
)

func loadDeviceCheckFramework() error {
	dcFrameworkOnce.Do(func() {
		if err := loadObjC(); err != nil {
			dcFrameworkErr = err
			return
		}
		if _, err := purego.Dlopen(deviceCheckPath, purego.RTLD_NOW|purego.RTLD_GLOBAL); err != nil {
			dcFrameworkErr = &provider.Error{Reason: provider.ReasonUnsupported,
				Msg: "cannot load DeviceCheck.framework", HintText: provider.MacOSRequirement,
				Err: fmt.Errorf("dlopen %s: %w", deviceCheckPath, err)}
		}
	})
	return dcFrameworkErr
}

// inAutoreleasePool runs f on a locked OS thread inside an autorelease
// pool, so that whatever Security, CoreFoundation or Foundation
// autoreleases on f's behalf is freed when f returns, on the thread that
// made it. Without a pool such objects would leak: Go threads have none.
func inAutoreleasePool(f func()) error {
	if err := loadObjC(); err != nil {
		return err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pool := autoreleasePoolPush()
	defer autoreleasePoolPop(pool)
	f()
	return nil
}
