package stdio

import (
	"context"
	"sync"

	"github.com/attestd/attestd/bridge/provider"
)

// OnUnreachable returns src with onUnreachable called once, the first
// time a token request fails because no daemon answers
// (provider.ReasonDaemonUnreachable): the app-server only records s=2
// upstream, which no one sees, so the bridge says what to do where a
// person looks. The result keeps src's ReadyWaiter and TurnTracker
// methods, and only those it has, since the Bridge decides by them
// whether it can hold a cold turn and report turns.
func OnUnreachable(src Source, onUnreachable func()) Source {
	u := &unreachableSource{Source: src, warn: onUnreachable}
	rw, canWait := src.(ReadyWaiter)
	tt, tracks := src.(TurnTracker)
	switch {
	case canWait && tracks:
		return struct {
			*unreachableSource
			ReadyWaiter
			TurnTracker
		}{u, rw, tt}
	case canWait:
		return struct {
			*unreachableSource
			ReadyWaiter
		}{u, rw}
	case tracks:
		return struct {
			*unreachableSource
			TurnTracker
		}{u, tt}
	}
	return u
}

// unreachableSource is the Source of OnUnreachable.
type unreachableSource struct {
	Source
	warn func()
	once sync.Once
}

func (u *unreachableSource) Token(ctx context.Context) (string, error) {
	tok, err := u.Source.Token(ctx)
	if err != nil && provider.ReasonOf(err) == provider.ReasonDaemonUnreachable {
		u.once.Do(u.warn)
	}
	return tok, err
}
