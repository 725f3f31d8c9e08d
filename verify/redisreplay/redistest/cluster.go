package redistest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a running Redis Cluster of three masters, each its own
// redis-server on loopback TCP ports, holding every one of the 16384 slots
// between them (no replicas).
type Cluster struct {
	// Nodes are the cluster's masters, in the order they were joined.
	Nodes []*Server
}

// clusterSize is how many masters StartCluster joins: the fewest
// "redis-cli --cluster create" accepts.
const clusterSize = 3

// StartCluster starts three "redis-server --cluster-enabled yes" masters
// on free loopback ports (each with its cluster bus on another free port
// and its nodes.conf in a temporary directory), joins them with
// "redis-cli --cluster create … --cluster-replicas 0 --cluster-yes", and
// returns once every node says cluster_state:ok. config lines, such as
// "maxmemory-policy allkeys-lru", go to every node's configuration. The
// nodes stop when the test ends; their output is shown when it fails.
// Without redis-server or redis-cli ($REDIS_SERVER, $REDIS_CLI, else
// PATH) the test fails with a hint saying how to install them.
func StartCluster(tb testing.TB, config ...string) *Cluster {
	tb.Helper()
	bin, cli := serverBinary(tb), cliBinary(tb)
	dir := tb.TempDir()
	c := &Cluster{}
	for i := range clusterSize {
		nodeDir := filepath.Join(dir, "node"+strconv.Itoa(i))
		if err := os.Mkdir(nodeDir, 0o700); err != nil {
			tb.Fatal(err)
		}
		bus := func(ports []int) []string {
			return []string{
				"cluster-enabled yes",
				"cluster-port " + strconv.Itoa(ports[1]),
				"cluster-config-file " + filepath.Join(nodeDir, "nodes.conf"),
			}
		}
		c.Nodes = append(c.Nodes, startTCP(tb, bin, nodeDir, 2, bus, config))
	}

	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("%s %s: %v\n%s", cli, strings.Join(args, " "), err, out)
	}
	if err := c.waitOK(ctx); err != nil {
		tb.Fatalf("%v\nredis-cli --cluster create printed:\n%s", err, out)
	}
	return c
}

// waitOK polls CLUSTER INFO on every node until each says
// cluster_state:ok, or ctx ends.
func (c *Cluster) waitOK(ctx context.Context) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for _, n := range c.Nodes {
		rdb := redis.NewClient(&redis.Options{Addr: n.Addr, MaxRetries: -1})
		defer rdb.Close()
		for {
			info, err := rdb.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s: no cluster_state:ok in time (last answer %q, error %v)", n, info, err)
			case <-tick.C:
			}
		}
	}
	return nil
}

// Addrs returns the nodes' 127.0.0.1:port addresses.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr
	}
	return addrs
}

// URL returns the cluster's address in the form go-redis's
// ParseClusterURL takes: redis://127.0.0.1:p1?addr=127.0.0.1:p2&addr=….
func (c *Cluster) URL() string {
	addrs := c.Addrs()
	return "redis://" + addrs[0] + "?addr=" + strings.Join(addrs[1:], "&addr=")
}

// Stop stops every node. It is safe to call more than once.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		n.Stop()
	}
}

// cliBinary returns $REDIS_CLI, else redis-cli from PATH, and fails the
// test with a hint when there is none.
func cliBinary(tb testing.TB) string {
	tb.Helper()
	return binary(tb, "REDIS_CLI", "redis-cli", "the Redis Cluster tests need it to join the nodes",
		"Debian's redis-server and redis-tools, or Homebrew's redis on a Mac", "a redis-cli (or valkey-cli)")
}
