package darwin

import (
	"context"
	"errors"
	"runtime"
	"testing"
)

func TestSignature(t *testing.T) {
	tests := []struct {
		sig          Signature
		adhoc, hard  bool
		want         string
		wantIdentity Identity
	}{
		{Signature{}, false, false, "unsigned", Identity{BundleID: "b"}},
		{Signature{Signed: true, Identifier: "attestd-5555", Flags: SignatureAdhoc | SignatureLinkerSigned}, true, false,
			`ad-hoc signed, identifier "attestd-5555", flags 0x20002(adhoc,linker-signed)`, Identity{BundleID: "b"}},
		{Signature{Signed: true, Identifier: "com.example.attestd", TeamID: "ABCDE12345", Flags: SignatureRuntime}, false, true,
			`signed by team ABCDE12345, identifier "com.example.attestd", flags 0x10000(runtime)`,
			Identity{BundleID: "b", TeamID: "ABCDE12345"}},
		{Signature{Signed: true, Identifier: "x", TeamID: "ABCDE12345", Flags: SignatureAdhoc}, true, false,
			`signed by team ABCDE12345, identifier "x", flags 0x2(adhoc)`, Identity{BundleID: "b"}},
		{Signature{Signed: true, Identifier: "x"}, false, false, `signed without a Team ID, identifier "x", flags 0x0`, Identity{BundleID: "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if tt.sig.AdHoc() != tt.adhoc || tt.sig.HardenedRuntime() != tt.hard {
				t.Errorf("AdHoc, HardenedRuntime = %v, %v; want %v, %v", tt.sig.AdHoc(), tt.sig.HardenedRuntime(), tt.adhoc, tt.hard)
			}
			if got := tt.sig.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if got := identityOf("b", tt.sig); got != tt.wantIdentity {
				t.Errorf("identityOf = %+v, want %+v", got, tt.wantIdentity)
			}
		})
	}
}

func TestHasGraphicAccess(t *testing.T) {
	for attrs, want := range map[uint32]bool{0: false, 0x10: true, 0x1010: true, 0x1020: false, 0x8001: false} {
		if got := hasGraphicAccess(attrs); got != want {
			t.Errorf("hasGraphicAccess(%#x) = %v, want %v", attrs, got, want)
		}
	}
}

func TestUnsupportedElsewhere(t *testing.T) {
	if runtime.GOOS == "darwin" {
		t.Skip("darwin has the native layer")
	}
	if Available() {
		t.Error("Available() = true")
	}
	checks := map[string]error{}
	_, checks["NewDeviceCheck"] = NewDeviceCheck(DeviceCheckOptions{})
	_, checks["GUISession"] = GUISession()
	_, checks["DeviceCheckSupported"] = DeviceCheckSupported()
	_, checks["OSVersion"] = OSVersion()
	_, checks["SelfIdentity"] = SelfIdentity()
	_, checks["SelfSignature"] = SelfSignature()
	_, checks["ActivateSocket"] = ActivateSocket(DefaultLaunchdSocket)
	_, checks["NewPeerRequirement"] = NewPeerRequirement("anchor apple")
	_, checks["Translated"] = Translated()
	checks["PingMainQueue"] = PingMainQueue(context.Background())
	for name, err := range checks {
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: err = %v, want ErrUnsupported", name, err)
		}
	}
	if got := RunMainLoop(func() int { return 42 }); got != 42 {
		t.Errorf("RunMainLoop = %d, want f's 42", got)
	}
	if running, why := MainLoopRunning(); running || why == "" {
		t.Errorf("MainLoopRunning = %v, %q; want false and a reason", running, why)
	}
}
