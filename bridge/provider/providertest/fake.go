// Package providertest provides Scripted, a provider whose every call does
// what a test tells it: answer, fail, wait, hang or panic. It is a test
// double for the pool and the daemon, not a stand-in for DeviceCheck.
package providertest

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/bridge/provider"
)

// Step is what one call to Generate does, in this order: announce itself
// on Started, wait for Release (if set), sleep Delay, hang until the
// context ends (if Hang), panic with Panic (if set), fail with Err (if
// set), else return Answer (if set), else Token (or 32 random bytes) of
// the provider's kind.
type Step struct {
	Release <-chan struct{}
	Delay   time.Duration
	Hang    bool
	Panic   any
	Err     error
	Token   []byte
	Answer  *provider.Answer
}

// Scripted is a scriptable provider. Script picks the step for call n
// (counting from 0); nil means every call succeeds at once.
type Scripted struct {
	K      string // kind of its tokens, and its name; empty means header.KindDev
	Script func(n int) Step
	// Started, when set, receives the call number as each call begins.
	// Make it buffered or drain it.
	Started chan int

	mu    sync.Mutex
	calls int
}

var _ provider.Provider = (*Scripted)(nil)

// Name returns K, or "dev".
func (s *Scripted) Name() string {
	if s.K == "" {
		return header.KindDev
	}
	return s.K
}

// Calls returns how many times Generate has been called.
func (s *Scripted) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Generate runs the scripted step for this call.
func (s *Scripted) Generate(ctx context.Context) (provider.Answer, error) {
	tok, st, err := s.run(ctx)
	if err != nil {
		return provider.Answer{}, err
	}
	if st.Answer != nil {
		a := *st.Answer
		a.Token = append([]byte(nil), a.Token...)
		return a, nil
	}
	return provider.Answer{Kind: s.Name(), Token: tok}, nil
}

// run runs the step for this call up to its token.
func (s *Scripted) run(ctx context.Context) ([]byte, Step, error) {
	s.mu.Lock()
	n := s.calls
	s.calls++
	s.mu.Unlock()
	var st Step
	if s.Script != nil {
		st = s.Script(n)
	}
	if s.Started != nil {
		select {
		case s.Started <- n:
		case <-ctx.Done():
			return nil, st, ctx.Err()
		}
	}
	if st.Release != nil {
		select {
		case <-st.Release:
		case <-ctx.Done():
			return nil, st, fmt.Errorf("scripted call %d: %w", n, ctx.Err())
		}
	}
	if st.Delay > 0 {
		t := time.NewTimer(st.Delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, st, fmt.Errorf("scripted call %d: %w", n, ctx.Err())
		}
	}
	if st.Hang {
		<-ctx.Done()
		return nil, st, fmt.Errorf("scripted call %d hung: %w", n, ctx.Err())
	}
	if st.Panic != nil {
		panic(st.Panic)
	}
	if st.Err != nil {
		return nil, st, st.Err
	}
	if st.Token != nil {
		return append([]byte(nil), st.Token...), st, nil
	}
	b := make([]byte, provider.DevTokenLen)
	_, _ = rand.Read(b)
	return b, st, nil
}
