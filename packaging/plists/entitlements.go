package plists

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// GetTaskAllow is the entitlement that lets debuggers attach. Notarization
// rejects it and the helper never ships with it.
const GetTaskAllow = "com.apple.security.get-task-allow"

// Entitlement keys the provisioning-profile variant carries.
const (
	ApplicationIdentifier = "com.apple.application-identifier"
	TeamIdentifier        = "com.apple.developer.team-identifier"
)

// AppAttestEnvironment is App Attest's entitlement: which of Apple's App
// Attest environments the helper's keys are attested in. It is restricted:
// a helper that claims it needs an embedded provisioning profile that
// grants it (see entitlements/README.md).
const AppAttestEnvironment = "com.apple.developer.devicecheck.appattest-environment"

// The values of AppAttestEnvironment.
const (
	AppAttestDevelopment = "development" // Apple's sandbox; AAGUID "appattestdevelop"
	AppAttestProduction  = "production"  // AAGUID "appattest" and seven zero bytes
)

// ErrAppAttestEnvironment reports an App Attest environment that is
// neither development nor production.
var ErrAppAttestEnvironment = errors.New("App Attest environment must be development or production")

// CheckAppAttestEnvironment reports whether env is an App Attest
// environment, or empty (no App Attest entitlement).
func CheckAppAttestEnvironment(env string) error {
	switch env {
	case "", AppAttestDevelopment, AppAttestProduction:
		return nil
	}
	return fmt.Errorf("%w, not %q", ErrAppAttestEnvironment, env)
}

// WithAppAttest returns a copy of e that claims the App Attest environment
// env; an empty env returns e unchanged. It is an error for e to claim
// another environment already.
func (e Entitlements) WithAppAttest(env string) (Entitlements, error) {
	if env == "" {
		return e, nil
	}
	if err := CheckAppAttestEnvironment(env); err != nil {
		return nil, err
	}
	if v, ok := e[AppAttestEnvironment]; ok && v != env {
		return nil, fmt.Errorf("the entitlements already claim %s = %v, not %q", AppAttestEnvironment, v, env)
	}
	out := make(Entitlements, len(e)+1)
	for k, v := range e {
		out[k] = v
	}
	out[AppAttestEnvironment] = env
	return out, nil
}

// Entitlements is a parsed entitlements property list.
type Entitlements map[string]any

// ParseEntitlements decodes an entitlements plist. It must be XML with a
// dictionary root (codesign embeds it as written).
func ParseEntitlements(data []byte) (Entitlements, error) {
	var m map[string]any
	xml, err := Unmarshal(data, &m)
	if err != nil {
		return nil, fmt.Errorf("parse entitlements: %w", err)
	}
	if !xml {
		return nil, fmt.Errorf("parse entitlements: %w", ErrNotXML)
	}
	if m == nil {
		return nil, fmt.Errorf("parse entitlements: root is not a dictionary")
	}
	return Entitlements(m), nil
}

// Problems lists what makes e unfit for a notarized helper: the
// get-task-allow entitlement, and keys whose value is false (notarization
// wants absent keys instead). It is empty for a fit set.
func (e Entitlements) Problems() []string {
	var out []string
	for _, k := range e.keys() {
		v := e[k]
		if k == GetTaskAllow {
			out = append(out, fmt.Sprintf("has %s (debugger attach; notarization rejects it)", GetTaskAllow))
			continue
		}
		if b, ok := v.(bool); ok && !b {
			out = append(out, fmt.Sprintf("key %s is false; remove it instead", k))
		}
	}
	return out
}

func (e Entitlements) keys() []string {
	ks := make([]string, 0, len(e))
	for k := range e {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Resolve returns a copy of e with the Xcode-style build variables in its
// string values replaced: $(AppIdentifierPrefix) and
// $(TeamIdentifierPrefix) by "TEAMID.", $(DEVELOPMENT_TEAM) by the team
// ID, $(CFBundleIdentifier) and $(PRODUCT_BUNDLE_IDENTIFIER) by the bundle
// identifier. A variable left over, or one that needs an empty team ID, is
// an error. codesign does not expand these; Xcode does, and so does this.
func (e Entitlements) Resolve(teamID, bundleID string) (Entitlements, error) {
	vars := map[string]string{
		"AppIdentifierPrefix":       teamID + ".",
		"TeamIdentifierPrefix":      teamID + ".",
		"DEVELOPMENT_TEAM":          teamID,
		"CFBundleIdentifier":        bundleID,
		"PRODUCT_BUNDLE_IDENTIFIER": bundleID,
	}
	var resolve func(v any) (any, error)
	resolve = func(v any) (any, error) {
		switch v := v.(type) {
		case string:
			var b strings.Builder
			s := v
			for {
				i := strings.Index(s, "$(")
				if i < 0 {
					b.WriteString(s)
					return b.String(), nil
				}
				j := strings.Index(s[i:], ")")
				if j < 0 {
					return nil, fmt.Errorf("unterminated variable in %q", v)
				}
				name := s[i+2 : i+j]
				val, ok := vars[name]
				if !ok {
					return nil, fmt.Errorf("unknown variable $(%s) in %q", name, v)
				}
				if teamID == "" && (name != "CFBundleIdentifier" && name != "PRODUCT_BUNDLE_IDENTIFIER") {
					return nil, fmt.Errorf("$(%s) needs a team ID (set TEAM_ID)", name)
				}
				b.WriteString(s[:i])
				b.WriteString(val)
				s = s[i+j+1:]
			}
		case []any:
			out := make([]any, len(v))
			for i, x := range v {
				r, err := resolve(x)
				if err != nil {
					return nil, err
				}
				out[i] = r
			}
			return out, nil
		case map[string]any:
			out := make(map[string]any, len(v))
			for k, x := range v {
				r, err := resolve(x)
				if err != nil {
					return nil, err
				}
				out[k] = r
			}
			return out, nil
		default:
			return v, nil
		}
	}
	r, err := resolve(map[string]any(e))
	if err != nil {
		return nil, fmt.Errorf("resolve entitlements: %w", err)
	}
	return Entitlements(r.(map[string]any)), nil
}
