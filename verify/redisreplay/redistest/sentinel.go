package redistest

import (
	"net"
	"net/url"
	"testing"
)

// SentinelMaster is the name a Sentinel from StartSentinel knows its
// master by.
const SentinelMaster = "attestd"

// StartSentinel starts a Redis Sentinel ("redis-server --sentinel") on a
// free loopback port, watching master (a server on TCP, from StartWith)
// as SentinelMaster with a quorum of one, and returns once it watches it.
// It stops when the test ends. Its SentinelURL is what go-redis's
// ParseFailoverURL takes.
func StartSentinel(tb testing.TB, master *Server) *Server {
	tb.Helper()
	if master.Addr == "" {
		tb.Fatal("redistest.StartSentinel: the master must listen on TCP (StartWith with TCP)")
	}
	host, port, err := net.SplitHostPort(master.Addr)
	if err != nil {
		tb.Fatal(err)
	}
	watch := func([]int) []string {
		return []string{"sentinel monitor " + SentinelMaster + " " + host + " " + port + " 1"}
	}
	return startTCP(tb, serverBinary(tb), tb.TempDir(), 1, watch, nil, "--sentinel")
}

// SentinelURL returns the address of the Sentinel s in the form go-redis's
// ParseFailoverURL takes: redis://127.0.0.1:port?master_name=attestd.
func (s *Server) SentinelURL() string {
	return "redis://" + s.Addr + "?master_name=" + url.QueryEscape(SentinelMaster)
}
