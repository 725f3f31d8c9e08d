package bundle

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/attestd/attestd/packaging/plists"
	"github.com/attestd/attestd/packaging/profile"
)

// AppAttest is the App Attest part of a helper build, as the make
// variables say it: PROVIDER, APPATTEST_ENV and APPATTEST_REGISTER, and
// whether PROFILE embeds a provisioning profile.
type AppAttest struct {
	// Provider is PROVIDER: "" (see AgentProvider), auto, devicecheck or
	// appattest.
	Provider string
	// Environment is APPATTEST_ENV: "" (no App Attest entitlement),
	// development or production.
	Environment string
	// Register is APPATTEST_REGISTER: the agent's --appattest-register.
	Register string
	// Profile reports that PROFILE embeds a provisioning profile.
	Profile bool
}

// ShippedProviders are the providers a shipped agent may run. The
// development ones (appattest-sim, dev) prove nothing and are for
// "attestd agent install --provider …" on a developer's Mac.
var ShippedProviders = []string{plists.ProviderAuto, plists.ProviderDeviceCheck, plists.ProviderAppAttest}

// AgentProvider is the provider a shipped agent runs for PROVIDER and
// APPATTEST_REGISTER: PROVIDER when set; else auto when a registration URL
// is set (App Attest where it works, DeviceCheck otherwise); else
// devicecheck, as before App Attest.
func AgentProvider(provider, register string) string {
	switch {
	case provider != "":
		return provider
	case register != "":
		return plists.ProviderAuto
	}
	return plists.ProviderDeviceCheck
}

// ErrSettings reports make variables that cannot work together.
var ErrSettings = errors.New("packaging settings")

// SettingsError is a combination of make variables that make bundle
// refuses: what is wrong and what to do instead.
type SettingsError struct {
	Problem string
	Fix     string
}

func (e *SettingsError) Error() string { return e.Problem + "\n  fix: " + e.Fix }

// Unwrap returns ErrSettings.
func (e *SettingsError) Unwrap() error { return ErrSettings }

// Resolve checks the combination and returns the provider the agent runs,
// with warnings for combinations that build but may not do what was
// meant.
func (a AppAttest) Resolve() (provider string, warnings []string, err error) {
	bad := func(problem, fix string) (string, []string, error) {
		return "", nil, &SettingsError{Problem: problem, Fix: fix}
	}
	const getProfile = "PROFILE=path/to/profile (a Developer ID provisioning profile for BUNDLE_ID whose App ID has the App Attest capability; packaging/README.md, \"App Attest\")"
	provider = AgentProvider(a.Provider, a.Register)
	switch {
	case !slices.Contains(ShippedProviders, provider):
		if slices.Contains(plists.Providers, provider) {
			return bad(fmt.Sprintf("PROVIDER=%s is a development provider: it proves nothing, and a shipped agent must not run it", provider),
				"PROVIDER=auto, devicecheck or appattest; for development run attestd agent install --provider "+provider)
		}
		return bad(fmt.Sprintf("PROVIDER=%s is not a provider", provider), "PROVIDER="+strings.Join(ShippedProviders, ", PROVIDER="))
	case plists.CheckAppAttestEnvironment(a.Environment) != nil:
		return bad(fmt.Sprintf("APPATTEST_ENV=%s is not an App Attest environment", a.Environment),
			"APPATTEST_ENV=development or APPATTEST_ENV=production (empty: no App Attest entitlement)")
	case a.Environment != "" && !a.Profile:
		return bad("APPATTEST_ENV="+a.Environment+" without PROFILE: the App Attest entitlement is restricted, and macOS kills a helper that claims it without an embedded provisioning profile granting it",
			getProfile+", or leave APPATTEST_ENV empty")
	case provider == plists.ProviderAppAttest && (a.Environment == "" || !a.Profile):
		return bad("PROVIDER=appattest needs the App Attest entitlement, and so APPATTEST_ENV and PROFILE",
			"APPATTEST_ENV=production "+getProfile+"; or PROVIDER=auto to use App Attest only where it works")
	case provider == plists.ProviderAppAttest && a.Register == "":
		return bad("PROVIDER=appattest without APPATTEST_REGISTER: the helper's key must be registered with your server before its assertions count, so every request would get a DeviceCheck token",
			"APPATTEST_REGISTER=https://gate.example.com (the attestd gate, or any server that mounts the registration handlers)")
	case a.Register != "" && !plists.UsesAppAttest(provider):
		return bad("APPATTEST_REGISTER is set but PROVIDER="+provider+" never uses App Attest",
			"PROVIDER=auto (App Attest where it works) or PROVIDER=appattest, or leave APPATTEST_REGISTER empty")
	}
	if a.Register != "" {
		if err := plists.CheckAppAttestRegister(a.Register); err != nil {
			return bad("APPATTEST_REGISTER: "+err.Error(), "APPATTEST_REGISTER=https://your.gate.example (http only to 127.0.0.1 or localhost, for development)")
		}
	}
	switch {
	case a.Environment != "" && !plists.UsesAppAttest(provider):
		warnings = append(warnings, "APPATTEST_ENV="+a.Environment+" with PROVIDER="+provider+": the helper claims App Attest but its agent never uses it (set APPATTEST_REGISTER, and PROVIDER=auto or appattest)")
	case a.Environment != "" && a.Register == "":
		warnings = append(warnings, "APPATTEST_ENV="+a.Environment+" without APPATTEST_REGISTER: the agent has nowhere to register its key, so it stays with DeviceCheck")
	case a.Environment == "" && a.Register != "":
		warnings = append(warnings, "APPATTEST_REGISTER without APPATTEST_ENV: the helper is not signed with the App Attest entitlement. Whether App Attest works on macOS without it is not known (one report: it attests in the production environment); PROVIDER=auto falls back to DeviceCheck if it does not")
	}
	if a.Environment == plists.AppAttestDevelopment {
		warnings = append(warnings, "APPATTEST_ENV=development: keys are attested in Apple's sandbox, which attestd gate accepts only with --appattest-environment development or both; ship production")
	}
	return provider, warnings, nil
}

// checkProfileGrants reads the provisioning profile at name and reports
// whether it grants the App Attest environment env. The signature is not
// checked here; make verify-bundle does that.
func checkProfileGrants(name, env string) error {
	data, err := os.ReadFile(name)
	if err != nil {
		return fmt.Errorf("PROFILE: %w", err)
	}
	p, err := profile.Parse(data)
	if err != nil {
		return &SettingsError{Problem: fmt.Sprintf("PROFILE %s: %v", name, err),
			Fix: "download the profile again from Certificates, Identifiers & Profiles > Profiles (a .provisionprofile, used as downloaded)"}
	}
	granted, ok := p.Allows(plists.AppAttestEnvironment, env)
	switch {
	case ok:
		return nil
	case granted == nil:
		return &SettingsError{Problem: fmt.Sprintf("PROFILE %s does not grant App Attest (%s); the helper would be killed at launch", name, plists.AppAttestEnvironment),
			Fix: "enable App Attest for the helper's App ID (Identifiers > BUNDLE_ID > Capabilities), then generate and download the profile again; or leave APPATTEST_ENV empty"}
	}
	return &SettingsError{Problem: fmt.Sprintf("PROFILE %s grants App Attest environment %v, not APPATTEST_ENV=%s", name, granted, env),
		Fix: fmt.Sprintf("APPATTEST_ENV=%v, or a profile that grants %s", granted, env)}
}
