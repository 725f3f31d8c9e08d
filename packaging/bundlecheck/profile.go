package bundlecheck

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/attestd/attestd/packaging/plists"
)

// now is the clock for profile expiry; tests replace it.
var now = time.Now

// CheckProfile applies the provisioning-profile rule to an embedded
// profile: it names the team, covers the bundle id, has not expired, and
// the entitlements the helper is signed with carry its application
// identifier. A profile is CMS-signed; its plist is read from inside the
// signed content.
func CheckProfile(data []byte, bundleID, teamID string, ents plists.Entitlements) []Finding {
	var out []Finding
	add := func(fix, format string, args ...any) {
		out = append(out, Finding{Rule: RuleProfile, Subject: "embedded.provisionprofile", Problem: fmt.Sprintf(format, args...), Fix: fix})
	}
	const fix = "download a Developer ID provisioning profile for the helper's bundle id and team, then make bundle PROFILE=path/to/profile TEAM_ID=TEAMID"
	i := bytes.Index(data, []byte("<?xml"))
	j := bytes.LastIndex(data, []byte("</plist>"))
	if i < 0 || j < i {
		add(fix, "no property list inside the profile")
		return out
	}
	p, err := plists.Dict(data[i : j+len("</plist>")])
	if err != nil {
		add(fix, "profile plist does not parse: %v", err)
		return out
	}
	teams, _ := stringList(p["TeamIdentifier"])
	if len(teams) == 0 {
		add(fix, "profile names no TeamIdentifier")
	} else if teamID != "" && !slices.Contains(teams, teamID) {
		add(fix, "profile is for team %v, not TEAM_ID %s", teams, teamID)
	}
	if teamID == "" && len(teams) > 0 {
		teamID = teams[0]
	}
	pe, _ := p["Entitlements"].(map[string]any)
	appID, _ := pe[plists.ApplicationIdentifier].(string)
	wantID := teamID + "." + bundleID
	if appID == "" {
		add(fix, "profile entitlements have no %s", plists.ApplicationIdentifier)
	} else if appID != wantID && !(strings.HasSuffix(appID, ".*") && strings.HasPrefix(wantID, strings.TrimSuffix(appID, "*"))) {
		add(fix, "profile is for application identifier %q, not %q", appID, wantID)
	}
	if exp, ok := p["ExpirationDate"].(time.Time); ok && exp.Before(now()) {
		add(fix, "profile expired on %s", exp.Format(time.DateOnly))
	}
	if ents != nil {
		if got, _ := ents[plists.ApplicationIdentifier].(string); got != wantID {
			add("make bundle PROFILE=… TEAM_ID="+teamID+" ENTITLEMENTS=entitlements/attestd.profile.entitlements (then make sign)",
				"a profile is embedded but the signing entitlements have %s = %q, want %q", plists.ApplicationIdentifier, got, wantID)
		}
	}
	return out
}
