package darwin

import (
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// cToGo lists the Go types that may stand for each C type in a purego
// binding, after the C type is normalized (qualifiers and names dropped).
var cToGo = map[string][]string{
	"int":                          {"int32"},
	"int *":                        {"*int32"},
	"int **":                       {"**int32"},
	"size_t *":                     {"*uint64"},
	"socklen_t *":                  {"*uint32"},
	"char *":                       {"[]byte"},
	"const char *":                 {"string"},
	"UInt8 *":                      {"[]byte"},
	"void *":                       {"uintptr", "unsafe.Pointer", "*auditToken", "*int64"}, // typed where the callee writes a known type
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
	"CFTypeRef":                    {"uintptr"},
	"CFAllocatorRef":               {"uintptr"},
	"CFStringRef":                  {"uintptr"},
	"CFDataRef":                    {"uintptr"},
	"CFDictionaryRef":              {"uintptr"},
	"CFDictionaryRef *":            {"*uintptr"},
	"CFNumberRef":                  {"uintptr"},
	"CFBundleRef":                  {"uintptr"},
	"SecCodeRef":                   {"uintptr"},
	"SecCodeRef *":                 {"*uintptr"},
	"SecStaticCodeRef":             {"uintptr"},
	"SecRequirementRef":            {"uintptr"},
	"SecRequirementRef *":          {"*uintptr"},
	"void (return)":                {""},
	"void * (return)":              {"uintptr"},
	"int * (return)":               {"*int32"},
	"CFTypeID (return)":            {"uint64"},
	"CFIndex (return)":             {"int64"},
	"Boolean (return)":             {"bool"},
	"OSStatus (return)":            {"int32"},
	"int (return)":                 {"int32"},
	"CFStringRef (return)":         {"uintptr"},
	"CFDataRef (return)":           {"uintptr"},
	"CFDictionaryRef (return)":     {"uintptr"},
	"CFBundleRef (return)":         {"uintptr"},
}

var (
	// RET NAME(PARAMS); with RET possibly several words and stars.
	cDecl      = regexp.MustCompile(`^\s*([A-Za-z_][\w\s\*]*?)\s*\b([A-Za-z_]\w*)\s*\(([^)]*)\)\s*;`)
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

// TestBindingsMatchCDeclarations reads load_darwin.go (it builds only on
// darwin, but its source parses anywhere) and checks that every func var
// bound with purego has the Go types its quoted C declaration calls for.
func TestBindingsMatchCDeclarations(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "load_darwin.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.VAR {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			ft, ok := vs.Type.(*ast.FuncType)
			if !ok {
				continue
			}
			name := vs.Names[0].Name
			if vs.Doc == nil {
				t.Errorf("%s: no comment quoting its C declaration", name)
				continue
			}
			var text []string
			for _, c := range vs.Doc.List {
				text = append(text, strings.TrimPrefix(c.Text, "//"))
			}
			m := cDecl.FindStringSubmatch(strings.Join(text, " "))
			if m == nil {
				t.Errorf("%s: no C declaration in its comment %q", name, text)
				continue
			}
			checked++
			ret, cname, cparams := m[1], m[2], m[3]

			var cTypes []string
			if p := strings.TrimSpace(cparams); p != "void" && p != "" {
				for _, p := range strings.Split(p, ",") {
					cTypes = append(cTypes, normalizeC(p, true))
				}
			}
			var goTypes []string
			for _, fld := range ft.Params.List {
				n := max(len(fld.Names), 1)
				for range n {
					goTypes = append(goTypes, types.ExprString(fld.Type))
				}
			}
			if len(cTypes) != len(goTypes) {
				t.Errorf("%s (%s): %d C parameters %q, %d Go parameters %q", name, cname, len(cTypes), cTypes, len(goTypes), goTypes)
				continue
			}
			for i, ct := range cTypes {
				allowed, known := cToGo[ct]
				if !known {
					t.Errorf("%s (%s): parameter %d: C type %q has no Go mapping in this test", name, cname, i, ct)
					continue
				}
				if !slices.Contains(allowed, goTypes[i]) {
					t.Errorf("%s (%s): parameter %d: C %q is Go %s, want one of %q", name, cname, i, ct, goTypes[i], allowed)
				}
			}

			goRet := ""
			if ft.Results != nil && len(ft.Results.List) > 0 {
				if len(ft.Results.List) > 1 || len(ft.Results.List[0].Names) > 1 {
					t.Errorf("%s: more than one result", name)
					continue
				}
				goRet = types.ExprString(ft.Results.List[0].Type)
			}
			key := normalizeC(ret, false) + " (return)"
			allowed, known := cToGo[key]
			if !known {
				t.Errorf("%s (%s): C return type %q has no Go mapping in this test", name, cname, key)
				continue
			}
			if !slices.Contains(allowed, goRet) {
				t.Errorf("%s (%s): C returns %q, Go %q, want one of %q", name, cname, ret, goRet, allowed)
			}
		}
	}
	if checked < 20 {
		t.Errorf("checked only %d bindings; did the parsing break?", checked)
	}
}

// objcToGo gives the result type each Objective-C return type must be
// read as: objc.ID (from ID.Send) for objects, objc.Send[T] otherwise.
var objcToGo = map[string]string{
	"BOOL":         "bool",
	"NSInteger":    "int64",
	"NSUInteger":   "uint64",
	"const void *": "unsafe.Pointer",
	"const char *": "string",
	"void":         "objc.ID", // result ignored
	"instancetype": "objc.ID",
}

var (
	objcMethod   = regexp.MustCompile(`[-+]\s*\(([^)]*)\)\s*\w+`)
	objcProperty = regexp.MustCompile(`@property\s*(?:\([^)]*\))?\s*([^;]+);`)
)

// objcReturnType extracts the return type from a quoted method or property
// declaration.
func objcReturnType(comment string) (string, bool) {
	if m := objcProperty.FindStringSubmatch(comment); m != nil {
		decl := strings.TrimSpace(m[1])
		i := strings.LastIndexFunc(decl, func(r rune) bool { return r == ' ' || r == '*' })
		if i < 0 {
			return "", false
		}
		return strings.Join(strings.Fields(strings.ReplaceAll(decl[:i+1], "*", " *")), " "), true
	}
	if m := objcMethod.FindStringSubmatch(comment); m != nil {
		return strings.Join(strings.Fields(strings.ReplaceAll(m[1], "*", " *")), " "), true
	}
	return "", false
}

// TestMessagesMatchObjCDeclarations checks, in devicecheck_darwin.go, that
// every message send reads its result as the type the selector's quoted
// declaration returns.
func TestMessagesMatchObjCDeclarations(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "devicecheck_darwin.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{} // selector var -> Go result type
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.VAR {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			name := vs.Names[0].Name
			if !strings.HasPrefix(name, "sel") {
				continue
			}
			if vs.Doc == nil {
				t.Errorf("%s: no comment quoting its declaration", name)
				continue
			}
			ret, ok := objcReturnType(vs.Doc.Text())
			if !ok {
				t.Errorf("%s: no method or property declaration in %q", name, vs.Doc.Text())
				continue
			}
			goType, known := objcToGo[ret]
			if !known && (strings.HasSuffix(ret, "*") || ret == "NSErrorDomain") {
				goType, known = "objc.ID", true // an object
			}
			if !known {
				t.Errorf("%s: Objective-C type %q has no mapping in this test", name, ret)
				continue
			}
			want[name] = goType
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
		case *ast.SelectorExpr: // id.Send(sel, ...)
			if fun.Sel.Name != "Send" || len(call.Args) < 1 {
				return true
			}
			got = "objc.ID"
			sel = types.ExprString(call.Args[0])
		default:
			return true
		}
		sends++
		w, ok := want[sel]
		if !ok {
			t.Errorf("%s: sends %s, which has no quoted declaration", fset.Position(call.Pos()), sel)
			return true
		}
		if got != w {
			t.Errorf("%s: reads %s's result as %s, its declaration returns %s", fset.Position(call.Pos()), sel, got, w)
		}
		return true
	})
	if sends < 8 {
		t.Errorf("found only %d message sends; did the parsing break?", sends)
	}
}
