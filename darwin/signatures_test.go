package darwin

import (
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
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
}

// cCalledBySyscallN lists the functions called through purego.SyscallN
// (bound with l.addr) rather than a typed func var, and the file that
// calls them: SyscallN hands back the errno the call set.
var cCalledBySyscallN = map[string]string{"getsockopt": "peer_darwin.go"}

// cData lists the exported data symbols the layer reads or passes by
// address (l.addr, l.constant).
var cData = map[string]string{
	"kCFTypeDictionaryKeyCallBacks":   "CoreFoundation/CFDictionary.h: const CFDictionaryKeyCallBacks kCFTypeDictionaryKeyCallBacks;",
	"kCFTypeDictionaryValueCallBacks": "CoreFoundation/CFDictionary.h: const CFDictionaryValueCallBacks kCFTypeDictionaryValueCallBacks;",
	"kSecCodeInfoIdentifier":          "Security/SecCode.h: extern const CFStringRef kSecCodeInfoIdentifier;",
	"kSecCodeInfoTeamIdentifier":      "Security/SecCode.h: extern const CFStringRef kSecCodeInfoTeamIdentifier;",
	"kSecCodeInfoFlags":               "Security/SecCode.h: extern const CFStringRef kSecCodeInfoFlags;",
	"kSecGuestAttributeAudit":         "Security/SecCode.h (macOS 10.15+ SDKs): extern const CFStringRef kSecGuestAttributeAudit;",
	"getsockopt":                      "usr/include/sys/socket.h (called with purego.SyscallN)",
	"_dispatch_main_q":                "usr/include/dispatch/queue.h: extern struct dispatch_queue_s _dispatch_main_q; (dispatch_get_main_queue() returns its address)",
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
	"const char * (return)":        {"string"}, // purego copies it; NULL gives ""
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
		case "addr", "constant":
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
	"isSupported":                         {"DeviceCheck/DCDevice.h", "@property (getter=isSupported, readonly) BOOL supported;"},
	"generateTokenWithCompletionHandler:": {"DeviceCheck/DCDevice.h", "- (void)generateTokenWithCompletionHandler:(void(^)(NSData * _Nullable token, NSError * _Nullable error))completion;"},
	"length":                              {"Foundation/NSData.h", "@property (readonly) NSUInteger length;"},
	"bytes":                               {"Foundation/NSData.h", "@property (readonly) const void *bytes NS_RETURNS_INNER_POINTER;"},
	"domain":                              {"Foundation/NSError.h", "@property (readonly, copy) NSErrorDomain domain;"},
	"code":                                {"Foundation/NSError.h", "@property (readonly) NSInteger code;"},
	"localizedDescription":                {"Foundation/NSError.h", "@property (readonly, copy) NSString *localizedDescription;"},
	"UTF8String":                          {"Foundation/NSString.h", "@property (nullable, readonly) const char *UTF8String NS_RETURNS_INNER_POINTER;"},
	"retain":                              {"usr/include/objc/NSObject.h", "- (instancetype)retain OBJC_ARC_UNAVAILABLE;"},
}

// objcClasses lists the classes looked up by name.
var objcClasses = map[string]string{
	"DCDevice": "DeviceCheck/DCDevice.h: @interface DCDevice : NSObject",
}

var (
	objcMethod   = regexp.MustCompile(`^[-+]\s*\(([^)]*(?:\([^)]*\)[^)]*)*)\)\s*(\w+)(:?)`)
	objcProperty = regexp.MustCompile(`^@property\s*(?:\(([^)]*)\))?\s*([^;]+);`)
	objcKeyword  = regexp.MustCompile(`(\w+):`)
	trailingMacs = regexp.MustCompile(`\s+[A-Z][A-Z0-9_]+$`)
)

// objcSignature returns the selector a declaration declares and the Go
// type its result must be read as: objc.ID (from ID.Send) for objects,
// objc.Send[T] otherwise.
func objcSignature(decl string) (selector, goType string, ok bool) {
	var ret string
	if m := objcProperty.FindStringSubmatch(decl); m != nil {
		body := trailingMacs.ReplaceAllString(strings.TrimSpace(m[2]), "")
		i := strings.LastIndexFunc(body, func(r rune) bool { return r == ' ' || r == '*' })
		if i < 0 {
			return "", "", false
		}
		ret, selector = strings.TrimSpace(body[:i+1]), body[i+1:]
		for _, attr := range strings.Split(m[1], ",") {
			if g, found := strings.CutPrefix(strings.TrimSpace(attr), "getter="); found {
				selector = g
			}
		}
	} else if m := objcMethod.FindStringSubmatch(decl); m != nil {
		ret = m[1]
		if m[3] == "" {
			selector = m[2]
		} else {
			for _, k := range objcKeyword.FindAllStringSubmatch(decl[len(m[0])-len(m[2])-1:], -1) {
				selector += k[1] + ":"
			}
		}
	} else {
		return "", "", false
	}
	ret = strings.Join(strings.Fields(strings.ReplaceAll(ret, "*", " *")), " ")
	switch ret {
	case "BOOL":
		return selector, "bool", true
	case "NSInteger":
		return selector, "int64", true
	case "NSUInteger":
		return selector, "uint64", true
	case "const void *":
		return selector, "unsafe.Pointer", true
	case "const char *":
		return selector, "string", true
	case "void", "instancetype", "NSErrorDomain":
		return selector, "objc.ID", true
	}
	if strings.HasSuffix(ret, "*") {
		return selector, "objc.ID", true // an object
	}
	return "", "", false
}

func TestObjCSignature(t *testing.T) {
	// The parser of this test, on the declarations above: each yields the
	// selector it is listed under.
	for sel, d := range objcSelectors {
		got, _, ok := objcSignature(d.decl)
		if !ok || got != sel {
			t.Errorf("objcSignature(%q) = %q, %v; want %q", d.decl, got, ok, sel)
		}
	}
	for _, tt := range []struct{ decl, sel, goType string }{
		{"- (void)a:(int)x b:(void (^)(id y))z;", "a:b:", "objc.ID"},
		{"- (NSUInteger)count;", "count", "uint64"},
		{"@property (readonly) BOOL on;", "on", "bool"},
	} {
		sel, goType, ok := objcSignature(tt.decl)
		if !ok || sel != tt.sel || goType != tt.goType {
			t.Errorf("objcSignature(%q) = %q, %q, %v; want %q, %q", tt.decl, sel, goType, ok, tt.sel, tt.goType)
		}
	}
}

// TestMessagesMatchHeaders checks, in devicecheck_darwin.go, that every
// registered selector is one the SDK declares (objcSelectors), that every
// message send reads its result as that declaration's type, and that the
// classes looked up exist in the SDK.
func TestMessagesMatchHeaders(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "devicecheck_darwin.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{} // selector var -> Go result type
	registered := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Values) != 1 {
			return true
		}
		call, ok := vs.Values[0].(*ast.CallExpr)
		if !ok || types.ExprString(call.Fun) != "objc.RegisterName" || len(call.Args) != 1 {
			return true
		}
		lit, ok := call.Args[0].(*ast.BasicLit)
		if !ok {
			t.Errorf("%s: selector name is not a literal", vs.Names[0].Name)
			return true
		}
		sel, _ := strconv.Unquote(lit.Value)
		registered[sel] = true
		d, ok := objcSelectors[sel]
		if !ok {
			t.Errorf("%s registers %q, which has no quoted SDK declaration in objcSelectors", vs.Names[0].Name, sel)
			return true
		}
		_, goType, ok := objcSignature(d.decl)
		if !ok {
			t.Errorf("objcSelectors[%q]: cannot read %q", sel, d.decl)
			return true
		}
		want[vs.Names[0].Name] = goType
		return true
	})
	for sel := range objcSelectors {
		if !registered[sel] {
			t.Errorf("objcSelectors has %q, which devicecheck_darwin.go does not register", sel)
		}
	}
	sends := 0
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		var sel, got string
		switch fun := call.Fun.(type) {
		case *ast.IndexExpr: // objc.Send[T](id, sel, ...)
			if types.ExprString(fun.X) != "objc.Send" || len(call.Args) < 2 {
				return true
			}
			got = types.ExprString(fun.Index)
			sel = types.ExprString(call.Args[1])
		case *ast.SelectorExpr:
			switch {
			case types.ExprString(fun) == "objc.GetClass" && len(call.Args) == 1:
				lit, ok := call.Args[0].(*ast.BasicLit)
				name, _ := strconv.Unquote(lit.Value)
				if !ok || objcClasses[name] == "" {
					t.Errorf("%s: looks up class %s, which has no quoted SDK declaration", fset.Position(call.Pos()), types.ExprString(call.Args[0]))
				}
				return true
			case fun.Sel.Name == "Send" && len(call.Args) >= 1: // id.Send(sel, ...)
				got = "objc.ID"
				sel = types.ExprString(call.Args[0])
			default:
				return true
			}
		default:
			return true
		}
		sends++
		w, ok := want[sel]
		if !ok {
			t.Errorf("%s: sends %s, which is not a registered selector with an SDK declaration", fset.Position(call.Pos()), sel)
			return true
		}
		if got != w {
			t.Errorf("%s: reads %s's result as %s, its SDK declaration returns %s", fset.Position(call.Pos()), sel, got, w)
		}
		return true
	})
	if sends < 8 {
		t.Errorf("found only %d message sends; did the parsing break?", sends)
	}
}
