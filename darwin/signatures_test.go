package darwin

import (
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The tables below are the independent half of the binding checks: every
// C function, exported data symbol, Objective-C class and selector the
// purego layer uses, as Apple's SDK headers declare it, with the header it
// is quoted from. The tests read the bindings out of the *_darwin.go
// sources (which parse on any OS) and compare them with these tables, not
// with the comments beside the bindings, so a binding changed to another
// symbol, type or selector fails here.
//
// Quoted from the macOS 11.3 SDK (phracker/MacOSX-SDKs, MacOSX11.3.sdk)
// unless the entry names another source; parameter names are kept,
// nullability, availability and alias macros are dropped.

// cFunc is one C function declaration and where it is quoted from.
type cFunc struct{ header, decl string }

var cFuncs = map[string]cFunc{
	// libSystem
	"launch_activate_socket": {"usr/include/launch.h",
		"int launch_activate_socket(const char *name, int **fds, size_t *cnt);"},
	"free": {"usr/include/malloc/_malloc.h", "void free(void *ptr);"},
	"getsockopt": {"usr/include/sys/socket.h",
		"int getsockopt(int socket, int level, int option_name, void *restrict option_value, socklen_t *restrict option_len);"},
	"pthread_main_np": {"usr/include/pthread/pthread.h", "int pthread_main_np(void);"},
	"pthread_threadid_np": {"usr/include/pthread/pthread.h",
		"int pthread_threadid_np(pthread_t thread, __uint64_t *thread_id);"},
	"dispatch_queue_get_label": {"usr/include/dispatch/queue.h",
		"const char *dispatch_queue_get_label(dispatch_queue_t queue);"},
	"dispatch_async_f": {"usr/include/dispatch/queue.h",
		"void dispatch_async_f(dispatch_queue_t queue, void *context, dispatch_function_t work);"},
	// libobjc: not in a public header; declared in clang's Objective-C
	// ARC specification ("Automatic Reference Counting", runtime support).
	"objc_autoreleasePoolPush": {"clang docs AutomaticReferenceCounting.html#runtime-support",
		"void *objc_autoreleasePoolPush(void);"},
	"objc_autoreleasePoolPop": {"clang docs AutomaticReferenceCounting.html#runtime-support",
		"void objc_autoreleasePoolPop(void *pool);"},
	// CoreFoundation
	"CFRelease":         {"CoreFoundation/CFBase.h", "void CFRelease(CFTypeRef cf);"},
	"CFGetTypeID":       {"CoreFoundation/CFBase.h", "CFTypeID CFGetTypeID(CFTypeRef cf);"},
	"CFStringGetTypeID": {"CoreFoundation/CFString.h", "CFTypeID CFStringGetTypeID(void);"},
	"CFNumberGetTypeID": {"CoreFoundation/CFNumber.h", "CFTypeID CFNumberGetTypeID(void);"},
	"CFStringGetLength": {"CoreFoundation/CFString.h", "CFIndex CFStringGetLength(CFStringRef theString);"},
	"CFStringGetMaximumSizeForEncoding": {"CoreFoundation/CFString.h",
		"CFIndex CFStringGetMaximumSizeForEncoding(CFIndex length, CFStringEncoding encoding);"},
	"CFStringGetCString": {"CoreFoundation/CFString.h",
		"Boolean CFStringGetCString(CFStringRef theString, char *buffer, CFIndex bufferSize, CFStringEncoding encoding);"},
	"CFStringCreateWithBytes": {"CoreFoundation/CFString.h",
		"CFStringRef CFStringCreateWithBytes(CFAllocatorRef alloc, const UInt8 *bytes, CFIndex numBytes, CFStringEncoding encoding, Boolean isExternalRepresentation);"},
	"CFDataCreate": {"CoreFoundation/CFData.h",
		"CFDataRef CFDataCreate(CFAllocatorRef allocator, const UInt8 *bytes, CFIndex length);"},
	// CFData.h: the macOS SDK's header is not in the mirror; quoted from
	// Apple's CoreFoundation sources (swiftlang/swift-corelibs-foundation
	// CoreFoundation/Collections.subproj/CFData.h, 10e9f2f).
	"CFDataGetTypeID":  {"CoreFoundation/CFData.h", "CFTypeID CFDataGetTypeID(void);"},
	"CFDataGetLength":  {"CoreFoundation/CFData.h", "CFIndex CFDataGetLength(CFDataRef theData);"},
	"CFDataGetBytePtr": {"CoreFoundation/CFData.h", "const UInt8 *CFDataGetBytePtr(CFDataRef theData);"},
	"CFDictionaryCreate": {"CoreFoundation/CFDictionary.h",
		"CFDictionaryRef CFDictionaryCreate(CFAllocatorRef allocator, const void **keys, const void **values, CFIndex numValues, const CFDictionaryKeyCallBacks *keyCallBacks, const CFDictionaryValueCallBacks *valueCallBacks);"},
	"CFDictionaryGetValue": {"CoreFoundation/CFDictionary.h",
		"const void *CFDictionaryGetValue(CFDictionaryRef theDict, const void *key);"},
	"CFNumberGetValue": {"CoreFoundation/CFNumber.h",
		"Boolean CFNumberGetValue(CFNumberRef number, CFNumberType theType, void *valuePtr);"},
	"CFBundleGetMainBundle": {"CoreFoundation/CFBundle.h", "CFBundleRef CFBundleGetMainBundle(void);"},
	"CFBundleGetIdentifier": {"CoreFoundation/CFBundle.h", "CFStringRef CFBundleGetIdentifier(CFBundleRef bundle);"},
	"CFRunLoopGetMain":      {"CoreFoundation/CFRunLoop.h", "CFRunLoopRef CFRunLoopGetMain(void);"},
	"CFRunLoopRun":          {"CoreFoundation/CFRunLoop.h", "void CFRunLoopRun(void);"},
	"CFRunLoopStop":         {"CoreFoundation/CFRunLoop.h", "void CFRunLoopStop(CFRunLoopRef rl);"},
	// Security
	"SessionGetInfo": {"Security/AuthSession.h (Apple Security sources, darlinghq/darling-security 9b7bb1f)",
		"OSStatus SessionGetInfo(SecuritySessionId session, SecuritySessionId *sessionId, SessionAttributeBits *attributes);"},
	"SecCopyErrorMessageString": {"Security/SecBase.h",
		"CFStringRef SecCopyErrorMessageString(OSStatus status, void *reserved);"},
	"SecCodeCopySelf": {"Security/SecCode.h (darlinghq/darling-security 9b7bb1f)",
		"OSStatus SecCodeCopySelf(SecCSFlags flags, SecCodeRef *self);"},
	"SecCodeCopySigningInformation": {"Security/SecCode.h (darlinghq/darling-security 9b7bb1f)",
		"OSStatus SecCodeCopySigningInformation(SecStaticCodeRef code, SecCSFlags flags, CFDictionaryRef *information);"},
	"SecCodeCopyGuestWithAttributes": {"Security/SecCode.h (darlinghq/darling-security 9b7bb1f)",
		"OSStatus SecCodeCopyGuestWithAttributes(SecCodeRef host, CFDictionaryRef attributes, SecCSFlags flags, SecCodeRef *guest);"},
	"SecCodeCheckValidity": {"Security/SecCode.h (darlinghq/darling-security 9b7bb1f)",
		"OSStatus SecCodeCheckValidity(SecCodeRef code, SecCSFlags flags, SecRequirementRef requirement);"},
	"SecRequirementCreateWithString": {"Security/SecRequirement.h",
		"OSStatus SecRequirementCreateWithString(CFStringRef text, SecCSFlags flags, SecRequirementRef *requirement);"},
	// Security/SecItem.h of the macOS 10.15 SDK (phracker/MacOSX-SDKs
	// MacOSX10.15.sdk, 0c17980); the 11.3 SDK's copy is not in the mirror.
	// The result parameters are "CFTypeRef * __nullable CF_RETURNS_RETAINED result".
	"SecItemCopyMatching": {"Security/SecItem.h (macOS 10.15 SDK)",
		"OSStatus SecItemCopyMatching(CFDictionaryRef query, CFTypeRef *result);"},
	"SecItemAdd": {"Security/SecItem.h (macOS 10.15 SDK)",
		"OSStatus SecItemAdd(CFDictionaryRef attributes, CFTypeRef *result);"},
	"SecItemUpdate": {"Security/SecItem.h (macOS 10.15 SDK)",
		"OSStatus SecItemUpdate(CFDictionaryRef query, CFDictionaryRef attributesToUpdate);"},
	"SecItemDelete": {"Security/SecItem.h (macOS 10.15 SDK)",
		"OSStatus SecItemDelete(CFDictionaryRef query);"},
}

// cCalledBySyscallN lists the functions called through purego.SyscallN
// (bound with l.addr) rather than a typed func var, and the file that
// calls them: SyscallN hands back the errno the call set.
var cCalledBySyscallN = map[string]string{"getsockopt": "peer_darwin.go"}

// cData lists the exported data symbols the layer reads or passes by
// address (l.addr, l.constant, l.optionalConstant).
var cData = map[string]string{
	"kCFTypeDictionaryKeyCallBacks":   "CoreFoundation/CFDictionary.h: const CFDictionaryKeyCallBacks kCFTypeDictionaryKeyCallBacks;",
	"kCFTypeDictionaryValueCallBacks": "CoreFoundation/CFDictionary.h: const CFDictionaryValueCallBacks kCFTypeDictionaryValueCallBacks;",
	"kSecCodeInfoIdentifier":          "Security/SecCode.h: extern const CFStringRef kSecCodeInfoIdentifier;",
	"kSecCodeInfoTeamIdentifier":      "Security/SecCode.h: extern const CFStringRef kSecCodeInfoTeamIdentifier;",
	"kSecCodeInfoFlags":               "Security/SecCode.h: extern const CFStringRef kSecCodeInfoFlags;",
	"kSecGuestAttributeAudit":         "Security/SecCode.h (macOS 10.15+ SDKs): extern const CFStringRef kSecGuestAttributeAudit;",
	"getsockopt":                      "usr/include/sys/socket.h (called with purego.SyscallN)",
	// CoreFoundation/CFNumber.h (swiftlang/swift-corelibs-foundation):
	// CF_EXPORT const CFBooleanRef kCFBooleanTrue;
	"kCFBooleanTrue": "CoreFoundation/CFNumber.h: const CFBooleanRef kCFBooleanTrue;",
	// Security/SecItem.h (macOS 10.15 SDK), each declared
	// "extern const CFStringRef NAME API_AVAILABLE(...);"
	"kSecClass":                   "Security/SecItem.h: extern const CFStringRef kSecClass;",
	"kSecClassGenericPassword":    "Security/SecItem.h: extern const CFStringRef kSecClassGenericPassword;",
	"kSecAttrService":             "Security/SecItem.h: extern const CFStringRef kSecAttrService;",
	"kSecAttrAccount":             "Security/SecItem.h: extern const CFStringRef kSecAttrAccount;",
	"kSecAttrLabel":               "Security/SecItem.h: extern const CFStringRef kSecAttrLabel;",
	"kSecValueData":               "Security/SecItem.h: extern const CFStringRef kSecValueData;",
	"kSecReturnData":              "Security/SecItem.h: extern const CFStringRef kSecReturnData;",
	"kSecMatchLimit":              "Security/SecItem.h: extern const CFStringRef kSecMatchLimit;",
	"kSecMatchLimitOne":           "Security/SecItem.h: extern const CFStringRef kSecMatchLimitOne;",
	"kSecUseAuthenticationUI":     "Security/SecItem.h: extern const CFStringRef kSecUseAuthenticationUI API_AVAILABLE(macos(10.11), ios(9.0)); (deprecated from macOS 11)",
	"kSecUseAuthenticationUIFail": "Security/SecItem.h: extern const CFStringRef kSecUseAuthenticationUIFail API_AVAILABLE(macos(10.11), ios(9.0));",
	"_dispatch_main_q":            "usr/include/dispatch/queue.h: extern struct dispatch_queue_s _dispatch_main_q; (dispatch_get_main_queue() returns its address)",
}

// cToGo lists the Go types that may stand for each C type in a purego
// binding, after the C type is normalized (qualifiers and names dropped).
var cToGo = map[string][]string{
	"int":                          {"int32"},
	"int **":                       {"**int32"},
	"size_t *":                     {"*uint64"},
	"socklen_t *":                  {"*uint32"},
	"__uint64_t *":                 {"*uint64"},
	"char *":                       {"[]byte"},
	"const char *":                 {"string"},
	"UInt8 *":                      {"[]byte"},
	"void *":                       {"uintptr", "unsafe.Pointer", "*int64"}, // typed where the callee writes a known type
	"void **":                      {"*uintptr"},
	"Boolean":                      {"bool"},
	"CFIndex":                      {"int64"},
	"CFNumberType":                 {"int64"}, // CF_ENUM(CFIndex, CFNumberType)
	"CFTypeID":                     {"uint64"},
	"CFStringEncoding":             {"uint32"},
	"OSStatus":                     {"int32"},
	"SecCSFlags":                   {"uint32"},
	"SecuritySessionId":            {"uint32"},
	"SecuritySessionId *":          {"*uint32"},
	"SessionAttributeBits *":       {"*uint32"},
	"CFDictionaryKeyCallBacks *":   {"uintptr"},
	"CFDictionaryValueCallBacks *": {"uintptr"},
	"pthread_t":                    {"uintptr"},
	"dispatch_queue_t":             {"uintptr"},
	"dispatch_function_t":          {"uintptr"}, // a purego.NewCallback pointer
	"CFTypeRef":                    {"uintptr"},
	"CFAllocatorRef":               {"uintptr"},
	"CFStringRef":                  {"uintptr"},
	"CFDataRef":                    {"uintptr"},
	"CFDictionaryRef":              {"uintptr"},
	"CFDictionaryRef *":            {"*uintptr"},
	"CFTypeRef *":                  {"*uintptr"},
	"CFNumberRef":                  {"uintptr"},
	"CFBundleRef":                  {"uintptr"},
	"CFRunLoopRef":                 {"uintptr"},
	"SecCodeRef":                   {"uintptr"},
	"SecCodeRef *":                 {"*uintptr"},
	"SecStaticCodeRef":             {"uintptr"},
	"SecRequirementRef":            {"uintptr"},
	"SecRequirementRef *":          {"*uintptr"},
	"void (return)":                {""},
	"void * (return)":              {"uintptr"},
	"UInt8 * (return)":             {"unsafe.Pointer"}, // const UInt8 *, inner pointer
	"const char * (return)":        {"string"},         // purego copies it; NULL gives ""
	"CFTypeID (return)":            {"uint64"},
	"CFIndex (return)":             {"int64"},
	"Boolean (return)":             {"bool"},
	"OSStatus (return)":            {"int32"},
	"int (return)":                 {"int32"},
	"CFStringRef (return)":         {"uintptr"},
	"CFDataRef (return)":           {"uintptr"},
	"CFDictionaryRef (return)":     {"uintptr"},
	"CFBundleRef (return)":         {"uintptr"},
	"CFRunLoopRef (return)":        {"uintptr"},
}

var (
	// RET NAME(PARAMS); with RET possibly several words and stars.
	cDeclRE    = regexp.MustCompile(`^\s*([A-Za-z_][\w\s\*]*?)\s*\b([A-Za-z_]\w*)\s*\(([^)]*)\)\s*;`)
	qualifiers = regexp.MustCompile(`\b(const|restrict|__restrict|__nonnull|__nullable|_Nullable|_Nonnull|CF_RETURNS_RETAINED)\b`)
)

// normalizeC drops qualifiers and the parameter name from a C parameter
// or return type and spaces its stars: "const void *restrict value" gives
// "void *".
func normalizeC(s string, isParam bool) string {
	s = strings.ReplaceAll(s, "const char", "CONSTCHAR") // a C string, unlike char *
	s = qualifiers.ReplaceAllString(s, " ")
	s = strings.ReplaceAll(s, "CONSTCHAR", "const char")
	s = strings.ReplaceAll(s, "*", " * ")
	f := strings.Fields(s)
	if isParam && len(f) > 1 && f[len(f)-1] != "*" {
		f = f[:len(f)-1] // the parameter's name
	}
	base, stars := []string{}, ""
	for _, w := range f {
		if w == "*" {
			stars += "*"
		} else {
			base = append(base, w)
		}
	}
	t := strings.Join(base, " ")
	if stars != "" {
		t += " " + stars
	}
	return t
}

// parseCDecl splits a declaration into its normalized return type, name
// and parameter types.
func parseCDecl(decl string) (ret, name string, params []string, ok bool) {
	m := cDeclRE.FindStringSubmatch(decl)
	if m == nil {
		return "", "", nil, false
	}
	if p := strings.TrimSpace(m[3]); p != "void" && p != "" {
		for _, p := range strings.Split(p, ",") {
			params = append(params, normalizeC(p, true))
		}
	}
	return normalizeC(m[1], false) + " (return)", m[2], params, true
}

// bindings is what load_darwin.go binds.
type bindings struct {
	funcVars map[string]*ast.ValueSpec // func var name -> its declaration
	fn       map[string]string         // func var name -> C symbol (l.fn)
	data     []string                  // symbols from l.addr and l.constant
}

func readBindings(t *testing.T) bindings {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "load_darwin.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	b := bindings{funcVars: map[string]*ast.ValueSpec{}, fn: map[string]string{}}
	for _, decl := range f.Decls {
		if gd, ok := decl.(*ast.GenDecl); ok && gd.Tok == token.VAR {
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				if _, ok := vs.Type.(*ast.FuncType); ok {
					b.funcVars[vs.Names[0].Name] = vs
				}
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || types.ExprString(sel.X) != "l" {
			return true
		}
		lit, ok := call.Args[len(call.Args)-1].(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return true
		}
		sym, _ := strconv.Unquote(lit.Value)
		switch sel.Sel.Name {
		case "fn":
			if u, ok := call.Args[0].(*ast.UnaryExpr); ok {
				b.fn[types.ExprString(u.X)] = sym
			}
		case "addr", "constant", "optionalConstant":
			b.data = append(b.data, sym)
		}
		return true
	})
	return b
}

// TestBindingsMatchHeaders checks every func var bound with purego
// against the C declaration of the symbol it binds, from cFuncs.
func TestBindingsMatchHeaders(t *testing.T) {
	b := readBindings(t)
	if len(b.fn) < 25 {
		t.Fatalf("found only %d l.fn bindings in load_darwin.go; did the parsing break?", len(b.fn))
	}
	bound := map[string]bool{}
	for goName, sym := range b.fn {
		bound[sym] = true
		want, ok := cFuncs[sym]
		if !ok {
			t.Errorf("%s binds %s, which has no quoted SDK declaration in cFuncs", goName, sym)
			continue
		}
		ret, cname, cTypes, ok := parseCDecl(want.decl)
		if !ok || cname != sym {
			t.Errorf("cFuncs[%q]: cannot read %q as a declaration of %s", sym, want.decl, sym)
			continue
		}
		vs := b.funcVars[goName]
		if vs == nil {
			t.Errorf("l.fn(&%s, %q): %s is not a func var", goName, sym, goName)
			continue
		}
		// The comment beside the binding quotes the same function.
		if vs.Doc == nil || !strings.Contains(vs.Doc.Text(), sym+"(") {
			t.Errorf("%s: its comment does not quote the declaration of %s", goName, sym)
		}
		ft := vs.Type.(*ast.FuncType)
		var goTypes []string
		for _, fld := range ft.Params.List {
			for range max(len(fld.Names), 1) {
				goTypes = append(goTypes, types.ExprString(fld.Type))
			}
		}
		if len(cTypes) != len(goTypes) {
			t.Errorf("%s (%s, %s): %d C parameters %q, %d Go parameters %q", goName, sym, want.header, len(cTypes), cTypes, len(goTypes), goTypes)
			continue
		}
		for i, ct := range cTypes {
			allowed, known := cToGo[ct]
			if !known {
				t.Errorf("%s (%s): parameter %d: C type %q has no Go mapping in this test", goName, sym, i, ct)
				continue
			}
			if !slices.Contains(allowed, goTypes[i]) {
				t.Errorf("%s (%s, %s): parameter %d: C %q is Go %s, want one of %q", goName, sym, want.header, i, ct, goTypes[i], allowed)
			}
		}
		goRet := ""
		if ft.Results != nil && len(ft.Results.List) > 0 {
			if len(ft.Results.List) > 1 || len(ft.Results.List[0].Names) > 1 {
				t.Errorf("%s: more than one result", goName)
				continue
			}
			goRet = types.ExprString(ft.Results.List[0].Type)
		}
		allowed, known := cToGo[ret]
		if !known {
			t.Errorf("%s (%s): C return type %q has no Go mapping in this test", goName, sym, ret)
			continue
		}
		if !slices.Contains(allowed, goRet) {
			t.Errorf("%s (%s, %s): C returns %q, Go %q, want one of %q", goName, sym, want.header, ret, goRet, allowed)
		}
	}
	for sym := range cFuncs {
		if !bound[sym] && cCalledBySyscallN[sym] == "" {
			t.Errorf("cFuncs has %s, which load_darwin.go does not bind (remove it, or bind it)", sym)
		}
	}
	for _, sym := range b.data {
		if _, ok := cData[sym]; !ok {
			t.Errorf("load_darwin.go reads data symbol %s, which has no quoted SDK declaration in cData", sym)
		}
	}
	if len(b.data) < len(cData) {
		t.Errorf("load_darwin.go reads %d data symbols %q; cData lists %d", len(b.data), b.data, len(cData))
	}
}

// TestSyscallNCallsMatchHeaders checks the functions called through
// purego.SyscallN: bound by address, called with as many arguments as
// their declaration has parameters.
func TestSyscallNCallsMatchHeaders(t *testing.T) {
	b := readBindings(t)
	for sym, file := range cCalledBySyscallN {
		if !slices.Contains(b.data, sym) {
			t.Errorf("%s: not bound with l.addr in load_darwin.go", sym)
		}
		_, _, params, ok := parseCDecl(cFuncs[sym].decl)
		if !ok {
			t.Fatalf("cFuncs[%q] does not parse", sym)
		}
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		calls := 0
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || types.ExprString(call.Fun) != "purego.SyscallN" || len(call.Args) == 0 {
				return true
			}
			if !strings.HasPrefix(strings.ToLower(types.ExprString(call.Args[0])), strings.ToLower(sym)) {
				return true
			}
			calls++
			if got := len(call.Args) - 1; got != len(params) {
				t.Errorf("%s: SyscallN passes %d arguments to %s, its declaration has %d", file, got, sym, len(params))
			}
			return true
		})
		if calls == 0 {
			t.Errorf("%s: no purego.SyscallN call of %s", file, sym)
		}
	}
}

// objcDecl is one Objective-C method or property declaration.
type objcDecl struct{ header, decl string }

// objcSelectors lists every selector the layer sends, keyed by selector.
var objcSelectors = map[string]objcDecl{
	"currentDevice":                       {"DeviceCheck/DCDevice.h", "@property (class, readonly) DCDevice *currentDevice;"},
	"isSupported":                         {"DeviceCheck/DCDevice.h and DeviceCheck/DCAppAttestService.h", "@property (getter=isSupported, readonly) BOOL supported;"},
	"generateTokenWithCompletionHandler:": {"DeviceCheck/DCDevice.h", "- (void)generateTokenWithCompletionHandler:(void(^)(NSData * _Nullable token, NSError * _Nullable error))completion;"},
	"length":                              {"Foundation/NSData.h", "@property (readonly) NSUInteger length;"},
	"bytes":                               {"Foundation/NSData.h", "@property (readonly) const void *bytes NS_RETURNS_INNER_POINTER;"},
	"domain":                              {"Foundation/NSError.h", "@property (readonly, copy) NSErrorDomain domain;"},
	"code":                                {"Foundation/NSError.h", "@property (readonly) NSInteger code;"},
	"localizedDescription":                {"Foundation/NSError.h", "@property (readonly, copy) NSString *localizedDescription;"},
	"UTF8String":                          {"Foundation/NSString.h", "@property (nullable, readonly) const char *UTF8String NS_RETURNS_INNER_POINTER;"},
	"retain":                              {"usr/include/objc/NSObject.h", "- (instancetype)retain OBJC_ARC_UNAVAILABLE;"},
	// @protocol NSObject; the same line in Apple's objc4-709
	// runtime/NSObject.h (as mirrored in FannCyii/ReadingOpenSouces).
	"respondsToSelector:": {"usr/include/objc/NSObject.h", "- (BOOL)respondsToSelector:(SEL)aSelector;"},
	// DCAppAttestService.h, macOS 11.3 SDK; the iOS 16.1 SDK's copy
	// (xybp888/iOS-SDKs) declares the same.
	"sharedService": {"DeviceCheck/DCAppAttestService.h", "@property (class, readonly) DCAppAttestService *sharedService;"},
	"generateKeyWithCompletionHandler:": {"DeviceCheck/DCAppAttestService.h",
		"- (void)generateKeyWithCompletionHandler:(void (^)(NSString * _Nullable keyId, NSError * _Nullable error))completionHandler;"},
	"attestKey:clientDataHash:completionHandler:": {"DeviceCheck/DCAppAttestService.h",
		"- (void)attestKey:(NSString *)keyId clientDataHash:(NSData *)clientDataHash completionHandler:(void (^)(NSData * _Nullable attestationObject, NSError * _Nullable error))completionHandler;"},
	"generateAssertion:clientDataHash:completionHandler:": {"DeviceCheck/DCAppAttestService.h",
		"- (void)generateAssertion:(NSString *)keyId clientDataHash:(NSData *)clientDataHash completionHandler:(void (^)(NSData * _Nullable assertionObject, NSError * _Nullable error))completionHandler;"},
}

// objcClasses lists the classes looked up by name.
var objcClasses = map[string]string{
	"DCDevice":           "DeviceCheck/DCDevice.h: @interface DCDevice : NSObject",
	"DCAppAttestService": "DeviceCheck/DCAppAttestService.h: @interface DCAppAttestService : NSObject (API_AVAILABLE(macos(11.0), ios(14.0)))",
}

// objcSig is what a declaration says about a message: its selector, the Go
// type its result must be read as (objc.ID from ID.Send for objects,
// objc.Send[T] otherwise), and its parameters.
type objcSig struct {
	selector string
	result   string
	params   []objcParam
}

// objcParam is one parameter: the Go type its argument must have, and for
// a block, the block's shape.
type objcParam struct {
	goType string
	block  *blockShape
}

// blockShape is a block type: its return type and how many parameters it
// takes, and whether all of them are object pointers.
type blockShape struct {
	ret        string
	params     int
	allObjects bool
}

var (
	objcMethod   = regexp.MustCompile(`^[-+]\s*\(([^)]*(?:\([^)]*\)[^)]*)*)\)\s*`)
	objcProperty = regexp.MustCompile(`^@property\s*(?:\(([^)]*)\))?\s*([^;]+);`)
	trailingMacs = regexp.MustCompile(`\s+[A-Z][A-Z0-9_]+$`)
	nullability  = regexp.MustCompile(`\b(_Nullable|_Nonnull|__nullable|__nonnull|nullable|nonnull)\b`)
	objcBlock    = regexp.MustCompile(`^(.*?)\s*\(\s*\^\s*\)\s*\((.*)\)$`)
)

// objcGoType maps an Objective-C type to the Go type purego reads or
// passes it as.
func objcGoType(typ string) (string, bool) {
	typ = strings.Join(strings.Fields(strings.ReplaceAll(nullability.ReplaceAllString(typ, " "), "*", " *")), " ")
	switch typ {
	case "BOOL":
		return "bool", true
	case "NSInteger":
		return "int64", true
	case "NSUInteger":
		return "uint64", true
	case "SEL":
		return "objc.SEL", true
	case "const void *":
		return "unsafe.Pointer", true
	case "const char *":
		return "string", true
	case "void", "instancetype", "id", "NSErrorDomain":
		return "objc.ID", true
	}
	if strings.HasSuffix(typ, "*") {
		return "objc.ID", true // an object
	}
	return "", false
}

// parseBlock reads a block type such as
// "void (^)(NSData * _Nullable token, NSError * _Nullable error)".
func parseBlock(typ string) (*blockShape, bool) {
	m := objcBlock.FindStringSubmatch(strings.TrimSpace(typ))
	if m == nil {
		return nil, false
	}
	b := &blockShape{ret: strings.TrimSpace(m[1]), allObjects: true}
	if p := strings.TrimSpace(m[2]); p != "" && p != "void" {
		for _, p := range strings.Split(p, ",") {
			b.params++
			if p = strings.TrimSpace(p); !strings.Contains(p, "*") && !strings.HasPrefix(p, "id ") {
				b.allObjects = false
			}
		}
	}
	return b, true
}

// balanced returns the text inside the parenthesis that s starts with,
// and what follows it.
func balanced(s string) (inside, rest string, ok bool) {
	depth := 0
	for i, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return s[1:i], s[i+1:], true
			}
		}
	}
	return "", "", false
}

// objcMethodParts reads "kw1:(T1)name1 kw2:(T2)name2" (or "name") into the
// selector and the parameter types.
func objcMethodParts(s string) (selector string, types []string, ok bool) {
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), ";"))
	for s != "" {
		i := strings.IndexFunc(s, func(r rune) bool {
			return r != '_' && !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
		})
		if i < 0 {
			i = len(s)
		}
		kw, rest := s[:i], strings.TrimSpace(s[i:])
		if !strings.HasPrefix(rest, ":") {
			if selector == "" { // a unary selector, perhaps followed by macros
				return kw, nil, kw != ""
			}
			return selector, types, trailingMacs.ReplaceAllString(" "+s, "") == ""
		}
		inside, after, ok := balanced(strings.TrimSpace(rest[1:]))
		if !ok {
			return "", nil, false
		}
		selector += kw + ":"
		types = append(types, inside)
		after = strings.TrimSpace(after)
		j := strings.IndexAny(after, " \t")
		if j < 0 {
			j = len(after)
		}
		s = strings.TrimSpace(after[j:]) // drop the parameter's name
	}
	return selector, types, selector != ""
}

// objcSignature reads a method or property declaration.
func objcSignature(decl string) (objcSig, bool) {
	var sig objcSig
	var ret string
	if m := objcProperty.FindStringSubmatch(decl); m != nil {
		body := trailingMacs.ReplaceAllString(strings.TrimSpace(m[2]), "")
		i := strings.LastIndexFunc(body, func(r rune) bool { return r == ' ' || r == '*' })
		if i < 0 {
			return sig, false
		}
		ret, sig.selector = strings.TrimSpace(body[:i+1]), body[i+1:]
		for _, attr := range strings.Split(m[1], ",") {
			if g, found := strings.CutPrefix(strings.TrimSpace(attr), "getter="); found {
				sig.selector = g
			}
		}
	} else if m := objcMethod.FindStringSubmatch(decl); m != nil {
		ret = m[1]
		sel, types, ok := objcMethodParts(decl[len(m[0]):])
		if !ok {
			return sig, false
		}
		sig.selector = sel
		for _, typ := range types {
			if b, isBlock := parseBlock(typ); isBlock {
				sig.params = append(sig.params, objcParam{goType: "objc.Block", block: b})
				continue
			}
			g, ok := objcGoType(typ)
			if !ok {
				return sig, false
			}
			sig.params = append(sig.params, objcParam{goType: g})
		}
	} else {
		return sig, false
	}
	var ok bool
	sig.result, ok = objcGoType(ret)
	return sig, ok
}

func TestObjCSignature(t *testing.T) {
	// The parser of this test, on the declarations above: each yields the
	// selector it is listed under.
	for sel, d := range objcSelectors {
		got, ok := objcSignature(d.decl)
		if !ok || got.selector != sel {
			t.Errorf("objcSignature(%q) = %q, %v; want %q", d.decl, got.selector, ok, sel)
		}
	}
	twoObjects := &blockShape{ret: "void", params: 2, allObjects: true}
	for _, tt := range []struct {
		decl string
		want objcSig
	}{
		{"- (void)a:(int *)x b:(void (^)(id y, NSError *e))z;",
			objcSig{"a:b:", "objc.ID", []objcParam{{goType: "objc.ID"}, {"objc.Block", twoObjects}}}},
		{"- (NSUInteger)count;", objcSig{"count", "uint64", nil}},
		{"- (instancetype)retain OBJC_ARC_UNAVAILABLE;", objcSig{"retain", "objc.ID", nil}},
		{"@property (readonly) BOOL on;", objcSig{"on", "bool", nil}},
		{"- (BOOL)respondsToSelector:(SEL)aSelector;", objcSig{"respondsToSelector:", "bool", []objcParam{{goType: "objc.SEL"}}}},
		{"- (void)attestKey:(NSString *)keyId clientDataHash:(NSData *)clientDataHash completionHandler:(void (^)(NSData * _Nullable attestationObject, NSError * _Nullable error))completionHandler;",
			objcSig{"attestKey:clientDataHash:completionHandler:", "objc.ID",
				[]objcParam{{goType: "objc.ID"}, {goType: "objc.ID"}, {"objc.Block", twoObjects}}}},
		{"- (void)f:(void (^)(BOOL ok))done;",
			objcSig{"f:", "objc.ID", []objcParam{{"objc.Block", &blockShape{ret: "void", params: 1}}}}},
	} {
		got, ok := objcSignature(tt.decl)
		if !ok || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("objcSignature(%q) = %+v, %v; want %+v", tt.decl, got, ok, tt.want)
		}
	}
	for _, bad := range []string{"- (struct x)y;", "- (void)a:(int)x;", "int f(void);"} {
		if got, ok := objcSignature(bad); ok {
			t.Errorf("objcSignature(%q) = %+v, want it refused", bad, got)
		}
	}
}

// darwinSources parses the package's non-test *_darwin.go files.
func darwinSources(t *testing.T) (*token.FileSet, []*ast.File) {
	t.Helper()
	names, err := filepath.Glob("*_darwin.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	if len(files) < 5 {
		t.Fatalf("found only %d *_darwin.go files", len(files))
	}
	return fset, files
}

// inspectWithFuncs walks f like ast.Inspect, passing each node with the
// functions (declarations and literals) that enclose it, innermost last.
func inspectWithFuncs(f *ast.File, visit func(n ast.Node, funcs []*ast.FuncType)) {
	var stack []ast.Node
	var funcs []*ast.FuncType
	ast.Inspect(f, func(n ast.Node) bool {
		if n == nil {
			switch stack[len(stack)-1].(type) {
			case *ast.FuncDecl, *ast.FuncLit:
				funcs = funcs[:len(funcs)-1]
			}
			stack = stack[:len(stack)-1]
			return true
		}
		stack = append(stack, n)
		switch fn := n.(type) {
		case *ast.FuncDecl:
			funcs = append(funcs, fn.Type)
		case *ast.FuncLit:
			funcs = append(funcs, fn.Type)
		}
		visit(n, funcs)
		return true
	})
}

// paramType returns the declared type of the parameter name in the
// innermost enclosing function that has one, or "".
func paramType(funcs []*ast.FuncType, name string) string {
	for i := len(funcs) - 1; i >= 0; i-- {
		for _, fld := range funcs[i].Params.List {
			for _, n := range fld.Names {
				if n.Name == name {
					return types.ExprString(fld.Type)
				}
			}
		}
	}
	return ""
}

// objcSources is what the *_darwin.go files register, look up and send.
type objcSources struct {
	fset      *token.FileSet
	files     []*ast.File
	selectors map[string]objcSig // selector var -> the SDK's declaration
	blocks    []blockShape       // the shapes of the objc.NewBlock funcs
}

func readObjCSources(t *testing.T) objcSources {
	t.Helper()
	fset, files := darwinSources(t)
	s := objcSources{fset: fset, files: files, selectors: map[string]objcSig{}}
	registered := map[string]bool{}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec:
				s.readSelector(t, n, registered)
			case *ast.CallExpr:
				if types.ExprString(n.Fun) == "objc.NewBlock" && len(n.Args) == 1 {
					s.blocks = append(s.blocks, s.readBlock(t, n.Args[0]))
				}
			}
			return true
		})
	}
	for sel := range objcSelectors {
		if !registered[sel] {
			t.Errorf("objcSelectors has %q, which no *_darwin.go file registers", sel)
		}
	}
	return s
}

// readSelector records a selector var registered with objc.RegisterName.
func (s objcSources) readSelector(t *testing.T, vs *ast.ValueSpec, registered map[string]bool) {
	if len(vs.Values) != 1 {
		return
	}
	call, ok := vs.Values[0].(*ast.CallExpr)
	if !ok || types.ExprString(call.Fun) != "objc.RegisterName" || len(call.Args) != 1 {
		return
	}
	lit, ok := call.Args[0].(*ast.BasicLit)
	if !ok {
		t.Errorf("%s: selector name is not a literal", vs.Names[0].Name)
		return
	}
	sel, _ := strconv.Unquote(lit.Value)
	registered[sel] = true
	d, ok := objcSelectors[sel]
	if !ok {
		t.Errorf("%s registers %q, which has no quoted SDK declaration in objcSelectors", vs.Names[0].Name, sel)
		return
	}
	sig, ok := objcSignature(d.decl)
	if !ok || sig.selector != sel {
		t.Errorf("objcSelectors[%q]: cannot read %q", sel, d.decl)
		return
	}
	s.selectors[vs.Names[0].Name] = sig
}

// readBlock reads the shape of the Go func an objc.NewBlock call wraps:
// objc.Block first (purego passes the block itself), then the block's
// parameters, which must all be objects (objc.ID), and no result.
func (s objcSources) readBlock(t *testing.T, arg ast.Expr) blockShape {
	fl, ok := arg.(*ast.FuncLit)
	if !ok {
		t.Errorf("%s: objc.NewBlock of something other than a func literal", s.fset.Position(arg.Pos()))
		return blockShape{}
	}
	var params []string
	for _, fld := range fl.Type.Params.List {
		for range max(len(fld.Names), 1) {
			params = append(params, types.ExprString(fld.Type))
		}
	}
	b := blockShape{ret: "void", allObjects: true}
	if fl.Type.Results != nil && len(fl.Type.Results.List) > 0 {
		b.ret = "non-void"
	}
	if len(params) == 0 || params[0] != "objc.Block" {
		t.Errorf("%s: a block func must take objc.Block first, takes %q", s.fset.Position(fl.Pos()), params)
		return blockShape{}
	}
	for _, p := range params[1:] {
		b.params++
		if p != "objc.ID" {
			b.allObjects = false
		}
	}
	return b
}

// TestMessagesMatchHeaders checks, in every *_darwin.go file, that every
// registered selector is one the SDK declares (objcSelectors), that every
// message send passes as many arguments as the declaration has
// parameters, each of the Go type that parameter needs (a conversion to
// that type, a parameter declared with it, or for a SEL a registered
// selector), that it reads its result as the declaration's type, that a
// block argument has the shape of a block func the layer makes
// (objc.NewBlock), and that the classes looked up exist in the SDK.
func TestMessagesMatchHeaders(t *testing.T) {
	s := readObjCSources(t)
	sends := 0
	for _, f := range s.files {
		inspectWithFuncs(f, func(n ast.Node, funcs []*ast.FuncType) {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return
			}
			var selArg ast.Expr
			var got string
			var args []ast.Expr
			switch fun := call.Fun.(type) {
			case *ast.IndexExpr: // objc.Send[T](id, sel, ...)
				if types.ExprString(fun.X) != "objc.Send" || len(call.Args) < 2 {
					return
				}
				got, selArg, args = types.ExprString(fun.Index), call.Args[1], call.Args[2:]
			case *ast.SelectorExpr:
				switch {
				case types.ExprString(fun) == "objc.GetClass" && len(call.Args) == 1:
					lit, ok := call.Args[0].(*ast.BasicLit)
					name, _ := strconv.Unquote(lit.Value)
					if !ok || objcClasses[name] == "" {
						t.Errorf("%s: looks up class %s, which has no quoted SDK declaration", s.fset.Position(call.Pos()), types.ExprString(call.Args[0]))
					}
					return
				case fun.Sel.Name == "Send" && len(call.Args) >= 1: // id.Send(sel, ...)
					got, selArg, args = "objc.ID", call.Args[0], call.Args[1:]
				default:
					return
				}
			default:
				return
			}
			sends++
			s.checkSend(t, call, selArg, got, args, funcs)
		})
	}
	if sends < 14 {
		t.Errorf("found only %d message sends; did the parsing break?", sends)
	}
	for _, b := range s.blocks {
		if b.ret != "void" || !b.allObjects {
			t.Errorf("a block func has shape %+v; the layer's completion handlers return nothing and take objects", b)
		}
	}
}

// checkSend checks one message send against its selector's declaration.
func (s objcSources) checkSend(t *testing.T, call *ast.CallExpr, selArg ast.Expr, got string, args []ast.Expr, funcs []*ast.FuncType) {
	t.Helper()
	pos := s.fset.Position(call.Pos())
	selName := types.ExprString(selArg)
	sig, ok := s.selectors[selName]
	if !ok {
		t.Errorf("%s: sends %s, which is not a registered selector with an SDK declaration", pos, selName)
		return
	}
	if got != sig.result {
		t.Errorf("%s: reads %s's result as %s, its SDK declaration returns %s", pos, sig.selector, got, sig.result)
	}
	if len(args) != len(sig.params) {
		t.Errorf("%s: sends %s with %d arguments, its SDK declaration has %d", pos, sig.selector, len(args), len(sig.params))
		return
	}
	for i, arg := range args {
		p := sig.params[i]
		if !s.argIs(arg, p.goType, funcs) {
			t.Errorf("%s: %s argument %d is %s, not of the Go type %s its SDK declaration needs", pos, sig.selector, i+1, types.ExprString(arg), p.goType)
		}
		if p.block != nil && !slices.Contains(s.blocks, *p.block) {
			t.Errorf("%s: %s takes a block of shape %+v; the layer makes blocks of shapes %+v", pos, sig.selector, *p.block, s.blocks)
		}
	}
}

// argIs reports whether arg is visibly of the Go type goType: a
// conversion to it, a parameter of an enclosing function declared with
// it, or, for objc.SEL, a registered selector var.
func (s objcSources) argIs(arg ast.Expr, goType string, funcs []*ast.FuncType) bool {
	switch a := arg.(type) {
	case *ast.CallExpr:
		return len(a.Args) == 1 && types.ExprString(a.Fun) == goType
	case *ast.Ident:
		if _, isSel := s.selectors[a.Name]; isSel {
			return goType == "objc.SEL"
		}
		return paramType(funcs, a.Name) == goType
	}
	return false
}
