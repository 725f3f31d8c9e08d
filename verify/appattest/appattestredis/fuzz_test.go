package appattestredis_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/attestd/attestd/verify/appattest"
	"github.com/attestd/attestd/verify/appattest/appattestredis"
	"github.com/attestd/attestd/verify/appattest/storetest"
	"github.com/attestd/attestd/verify/redisreplay"
	"github.com/attestd/attestd/verify/redisreplay/redistest"
)

// fuzzSteps bounds the counters one input runs, so that an input costs
// at most that many round trips to Redis.
const fuzzSteps = 256

// releaseOp is the step byte that releases the previous step's accept.
const releaseOp = 0x7f

// windowProgram reads a fuzz input as a window size and a sequence of
// steps: the first byte is the size (taken as is: 0 and more than 64
// are the store's to clamp), then each step is one byte saying what to
// do: releaseOp releases the accept of the step before (c is 0);
// otherwise a counter near the highest so far (the low 7 bits, an offset
// from highest-64 to highest+62), or, when the top bit is set and four
// bytes follow, those four bytes as the counter itself.
func windowProgram(data []byte) (size int, steps []uint32, release []bool) {
	if len(data) == 0 {
		return 0, nil, nil
	}
	size, data = int(data[0]), data[1:]
	var highest uint32
	for len(data) > 0 && len(steps) < fuzzSteps {
		op := data[0]
		data = data[1:]
		var c uint32
		switch {
		case op == releaseOp:
		case op&0x80 != 0 && len(data) >= 4:
			c, data = binary.BigEndian.Uint32(data), data[4:]
		default:
			c = highest - 64 + uint32(op&0x7f) // wraps, as counters near 0 and 2^32-1 must be tried
		}
		steps, release = append(steps, c), append(release, op == releaseOp)
		if op != releaseOp {
			highest = max(highest, c)
		}
	}
	return size, steps, release
}

// FuzzWindowScript runs the Redis counter script and appattest.Window on
// the same counters, with a real redis-server: every step must be
// accepted or refused by both, and the window left must be the same.
// The script keeps the window as text and Lua numbers; Window as two
// integers: they must never disagree. Releases are judged against the
// model of KeyStore.Release: the window before the key's latest accept,
// when that accept is the check's.
func FuzzWindowScript(f *testing.F) {
	max32 := []byte{0x80, 0xff, 0xff, 0xff, 0xff}
	for _, seed := range [][]byte{
		{0, 65, 66, 67, 66, 65},
		{64, 0x80, 0, 0, 0, 100, 1, 0, 127, 64, 63},
		{1, 65, 66, 65, 67},
		{4, 70, 67, 66, 68, 67},
		{200, 0x80, 0, 0, 0, 1, 0x80, 0, 0, 0, 65, 0x80, 0, 0, 0, 1},
		append(append([]byte{0}, max32...), 64, 63, 0x80, 0, 0, 0, 0),
		append([]byte{7, 0x80, 0, 0, 0, 0}, max32...),
		{64, 126, 0, 1, 2, 3, 125, 124, 0x80, 0, 1, 0, 0, 65},
		{0, 65, releaseOp, 65, 66, 0x80, 0, 0, 1, 0, releaseOp, releaseOp, 64, releaseOp},
		{3, 0x80, 0, 0, 0, 9, 63, releaseOp, 62, 66, 64, releaseOp, 64},
	} {
		f.Add(seed)
	}
	srv := redistest.Start(f)
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: srv.Socket, DisableIdentity: true})
	f.Cleanup(func() { rdb.Close() })
	replay, err := redisreplay.Open(srv.URL(), redisreplay.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { replay.Close() })
	stores := map[int]*appattestredis.Store{}
	key := storetest.NewKey(f, "TEAMID1234.com.example.app", appattest.Production, appattest.AppleRootName)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		size, steps, release := windowProgram(data)
		s, ok := stores[size]
		if !ok {
			s = appattestredis.New(replay, appattestredis.Options{Prefix: fmt.Sprintf("fuzz%d:", size), WindowSize: size})
			stores[size] = s
		}
		if err := rdb.Del(ctx, fmt.Sprintf("fuzz%d:key:%x", size, key.ID)).Err(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Register(ctx, key, time.UnixMilli(0)); err != nil {
			t.Fatal(err)
		}
		var (
			model     appattest.Window
			lastCheck string // the check of the key's latest accept, and the window before it
			prev      appattest.Window
		)
		for i, c := range steps {
			before := model
			if release[i] {
				check := fmt.Sprint("check-", i-1)
				want := lastCheck == check
				if want {
					model, lastCheck = prev, ""
				}
				if got, err := s.Release(ctx, key.ID, check); got != want || err != nil {
					t.Fatalf("size %d, step %d: release of step %d on window %+v: the script says %v, %v; want %v", size, i, i-1, before, got, err, want)
				}
				continue
			}
			check := fmt.Sprint("check-", i)
			want := model.Accept(c, size)
			if want == nil {
				lastCheck, prev = check, before
			}
			got := s.Accept(ctx, key.ID, c, check, time.UnixMilli(int64(i)))
			if (got == nil) != (want == nil) || (got != nil && !errors.Is(got, appattest.ErrReplay)) {
				t.Fatalf("size %d, step %d: counter %d on window %+v: the script says %v, Window says %v", size, i, c, before, got, want)
			}
		}
		rec, err := s.Get(ctx, key.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Window != model {
			t.Fatalf("size %d, %d steps: the script left %+v, Window %+v", size, len(steps), rec.Window, model)
		}
	})
}
