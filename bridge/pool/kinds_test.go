package pool

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/internal/clock"
	"github.com/attestd/attestd/bridge/protocol"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/provider/providertest"
)

// shapingProvider is a scripted provider that decides how many answers
// are made ahead (provider.Ahead) and reports an App Attest state.
type shapingProvider struct {
	*providertest.Scripted
	ahead atomic.Int32 // -1: as many as asked for
}

func (s *shapingProvider) Ahead(want int) int {
	if n := int(s.ahead.Load()); n >= 0 {
		return n
	}
	return want
}

func (s *shapingProvider) AppAttestStatus() protocol.AppAttestStatus {
	return protocol.AppAttestStatus{State: protocol.AppAttestRegistered, Registered: true, Fallback: "dc"}
}

// newShapingHarness is newHarness with a shapingProvider whose answers
// the script gives.
func newShapingHarness(t *testing.T, cfg Config, ahead int, script func(n int) providertest.Step) (*harness, *shapingProvider) {
	t.Helper()
	sp := &shapingProvider{Scripted: &providertest.Scripted{Script: script, Started: make(chan int, 100)}}
	sp.ahead.Store(int32(ahead))
	h := &harness{t: t, clk: clock.NewFake(epoch), idle: make(chan struct{}, 1), prov: sp.Scripted}
	cfg.Provider, cfg.Clock, cfg.Jitter = sp, h.clk, func() float64 { return 0 }
	h.p = start(cfg, func() {
		select {
		case h.idle <- struct{}{}:
		default:
		}
	})
	t.Cleanup(h.p.Close)
	return h, sp
}

// aaAnswer is an App Attest answer of the scripted provider.
func aaAnswer(n int) *provider.Answer {
	return &provider.Answer{Kind: header.KindAppAttest, Token: []byte{byte(n), 1, 2, 3},
		GeneratedAt: epoch.Add(-time.Second), KeyID: make([]byte, 32), Nonce: make([]byte, 16)}
}

// TestAnswersOfMixedKinds: the kind comes with each answer, not with the
// provider; status names the provider, the last kind served and the
// count per kind, and shows the provider's App Attest state.
func TestAnswersOfMixedKinds(t *testing.T) {
	t.Parallel()
	h, _ := newShapingHarness(t, Config{Size: 1, BundleID: "b", TeamID: "m"}, -1, func(n int) providertest.Step {
		if n%2 == 1 {
			return providertest.Step{Answer: aaAnswer(n)}
		}
		return providertest.Step{Answer: &provider.Answer{Kind: header.KindDeviceCheck, Token: []byte("dc token")}}
	})
	var kinds []string
	for range 4 {
		s, err := h.p.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		dec, err := header.Decode(s)
		if err != nil {
			t.Fatalf("the pool served %q: %v", s, err)
		}
		if dec.BundleID != "b" || dec.TeamID != "m" {
			t.Fatalf("%s value %+v: want b and m filled in by the pool", dec.Kind, dec)
		}
		if dec.Kind == header.KindDeviceCheck && !dec.GeneratedAt.Equal(h.clk.Now().Truncate(time.Millisecond)) {
			t.Fatalf("dc value %+v: want g filled in by the pool", dec)
		}
		kinds = append(kinds, dec.Kind)
		h.settle()
	}
	if kinds[0] != "dc" || kinds[1] != "aa" || kinds[2] != "dc" || kinds[3] != "aa" {
		t.Fatalf("kinds served = %v", kinds)
	}
	st := h.p.Status()
	if st.Provider != "dev" || st.LastKind != "aa" || st.ServedByKind["aa"] != 2 || st.ServedByKind["dc"] != 2 {
		t.Fatalf("status: provider %q, last kind %q, by kind %v", st.Provider, st.LastKind, st.ServedByKind)
	}
	if st.AppAttest == nil || !st.AppAttest.Registered {
		t.Fatalf("status.appAttest = %+v", st.AppAttest)
	}
}

// TestAheadShapesTheReadySet: a provider that answers on demand is asked
// only when a request comes, and asks for as many ahead as it says.
func TestAheadShapesTheReadySet(t *testing.T) {
	t.Parallel()
	h, sp := newShapingHarness(t, Config{Size: 3}, 0, nil)
	h.p.Warm()
	h.settle()
	if st := h.p.Status(); st.Ready != 0 || h.prov.Calls() != 0 || st.Target != 0 || !st.Warm {
		t.Fatalf("on demand after a warm hint: ready %d, calls %d, target %d, warm %v", st.Ready, h.prov.Calls(), st.Target, st.Warm)
	}
	if err := h.p.WaitReady(canceledCtx()); err != nil {
		t.Fatalf("WaitReady with an on-demand provider = %v, want nil at once", err)
	}
	if _, err := h.p.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.settle()
	if st := h.p.Status(); st.Ready != 0 || h.prov.Calls() != 1 {
		t.Fatalf("after one request: ready %d, calls %d; want 0 and 1", st.Ready, h.prov.Calls())
	}

	sp.ahead.Store(2) // --appattest-ready 2
	h.p.Warm()
	h.settle()
	if st := h.p.Status(); st.Ready != 2 || st.Target != 2 {
		t.Fatalf("two ahead: ready %d, target %d", st.Ready, st.Target)
	}
	sp.ahead.Store(-1) // the fallback's tokens: all the pool wants
	h.p.Warm()
	h.settle()
	if st := h.p.Status(); st.Ready != 3 {
		t.Fatalf("as many as wanted: ready %d, want 3", st.Ready)
	}
}

// TestMalformedAnswer: an answer that cannot be encoded (an App Attest
// key id of the wrong size) fails its generation instead of being sent.
func TestMalformedAnswer(t *testing.T) {
	t.Parallel()
	bad := aaAnswer(1)
	bad.KeyID = bad.KeyID[:31]
	h, _ := newShapingHarness(t, Config{}, -1, func(int) providertest.Step {
		a := *bad
		return providertest.Step{Answer: &a}
	})
	if _, err := h.p.Token(context.Background()); err == nil || provider.ReasonOf(err) != provider.ReasonProviderError {
		t.Fatalf("Token = %v; want the encoding failure", err)
	}
}
