package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/attestd/attestd/internal/providers"
)

// providerFlags are the flags that choose and tune the token provider.
type providerFlags struct {
	name, register, appID *string
	ready                 *int
	devLatency            *time.Duration
}

// addProviderFlags defines --provider (defaulting to def), the App
// Attest flags and --dev-latency on fs.
func addProviderFlags(fs *flag.FlagSet, def, usage string) providerFlags {
	return providerFlags{
		name:       fs.String("provider", def, usage),
		register:   fs.String("appattest-register", "", "App Attest: register the key with the server at this base URL (an attestd gate); DeviceCheck tokens until it is registered"),
		ready:      fs.Int("appattest-ready", 0, "App Attest: keep this many assertions made ahead while busy (at most --prefetch); 0 makes each one when a request asks"),
		appID:      fs.String("app-id", "", "with appattest-sim: the App ID TEAMID.bundle.id its keys are for (on a Mac, App Attest's is the signed bundle's)"),
		devLatency: fs.Duration("dev-latency", 0, "with the dev and appattest-sim providers: make each token (and simulated App Attest call) take this long, as DeviceCheck's few hundred milliseconds do (e.g. 300ms)"),
	}
}

// spec returns what the flags name, for package providers.
func (f providerFlags) spec(s *streams) providers.Spec {
	label, _ := ownAgent(s)
	return providers.Spec{Name: *f.name, Register: *f.register, AppID: *f.appID, Ready: *f.ready,
		DevLatency: *f.devLatency, AgentLabel: label}
}

// warner returns a func that prints a warning line on s's stderr.
func warner(s *streams) func(string) {
	return func(msg string) { fmt.Fprintf(s.err, "attestd: warning: %s\n", msg) }
}
