package redisreplay

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Mode is how a Redis URL is read: which topology it names.
type Mode string

// The topologies OpenMode connects to.
const (
	// Single is one Redis server (or a proxy in front of many):
	// redis://[user:password@]host:port/db, rediss:// for TLS, or
	// unix:///path/to/socket, read by go-redis's ParseURL.
	Single Mode = "single"
	// Cluster is a Redis Cluster: redis://[user:password@]host1:port?addr=host2:port&addr=…,
	// any of its nodes as seeds, read by go-redis's ParseClusterURL.
	Cluster Mode = "cluster"
	// Sentinel is a master watched by Redis Sentinel:
	// redis://[user:password@]sentinel1:port?addr=sentinel2:port&master_name=NAME,
	// the user and password being the Sentinels' (the master's go in the
	// username= and password= parameters), read by go-redis's
	// ParseFailoverURL. The Store follows the master the Sentinels name.
	Sentinel Mode = "sentinel"
)

// Modes lists every Mode, for help texts.
var Modes = []Mode{Single, Cluster, Sentinel}

// ErrMode means a topology name is not one of Modes.
var ErrMode = errors.New("unknown redis mode")

// ParseMode returns the Mode named s: "single", "cluster" or "sentinel"
// (any case); "" is Single.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case "":
		return Single, nil
	case Single, Cluster, Sentinel:
		return m, nil
	}
	return "", fmt.Errorf("%w %q: want single, cluster or sentinel", ErrMode, s)
}

// OpenMode connects to the Redis that rawURL names in mode's form, with
// the guarantees of Open whatever the topology: a check's deadline bounds
// its command (ContextTimeoutEnabled), no command is sent twice (no
// retries, and in a Cluster no second try after a lost answer, nor after
// a MOVED or ASK redirection: the Store's next command goes to the slot's
// new owner), one dial attempt per command, so a Redis that is down fails
// a check at once, and no CLIENT SETINFO (unknown before Redis 7.2). It
// does not dial: the first check does. Close closes the connections. Its
// errors never repeat the URL, which may carry a password.
func OpenMode(rawURL string, mode Mode, opts Options) (*Store, error) {
	rdb, err := dial(rawURL, mode)
	if err != nil {
		// url.Parse's error quotes the whole URL, password included.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = fmt.Errorf("bad URL: %w", ue.Err)
		}
		return nil, fmt.Errorf("redis replay store: %w", err)
	}
	s := New(rdb, opts)
	s.owned = true
	return s, nil
}

// dial makes the client for rawURL in mode, with OpenMode's settings.
func dial(rawURL string, mode Mode) (redis.UniversalClient, error) {
	switch mode {
	case Single, "":
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, err
		}
		o.ContextTimeoutEnabled, o.MaxRetries, o.DialerRetries, o.DisableIdentity = true, -1, 1, true
		return redis.NewClient(o), nil
	case Cluster:
		o, err := redis.ParseClusterURL(rawURL)
		if err != nil {
			return nil, err
		}
		o.ContextTimeoutEnabled, o.MaxRetries, o.DialerRetries, o.DisableIdentity = true, -1, 1, true
		// The cluster client retries a command whose answer was lost (and
		// follows redirections) up to MaxRedirects times; -1 is none. A
		// SET NX sent again finds its own key and calls a fresh token a
		// replay.
		o.MaxRedirects = -1
		return redis.NewClusterClient(o), nil
	case Sentinel:
		o, err := redis.ParseFailoverURL(rawURL)
		if err != nil {
			return nil, err
		}
		if o.MasterName == "" {
			return nil, errors.New("a sentinel URL needs master_name=NAME")
		}
		o.ContextTimeoutEnabled, o.MaxRetries, o.DialerRetries, o.DisableIdentity = true, -1, 1, true
		return redis.NewFailoverClient(o), nil
	}
	_, err := ParseMode(string(mode))
	return nil, err
}
