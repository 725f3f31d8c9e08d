package redistest

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of private redis-servers on 127.0.0.1, each
// a master holding an equal share of the hash slots.
type Cluster struct {
	// Nodes are the servers; each also listens on its own Unix socket.
	Nodes []*Server
	// Addrs are the nodes' TCP addresses (127.0.0.1:port), for
	// redis.ClusterOptions.Addrs, in the order of Nodes.
	Addrs []string
}

// clusterReadyTimeout bounds the wait for a cluster whose nodes never
// agree; it only turns a hang into a failure.
const clusterReadyTimeout = time.Minute

// StartCluster starts n redis-servers in cluster mode, gives each a share
// of the slots, introduces them to each other and returns once every node
// reports the cluster ok. Cluster mode needs TCP (the cluster bus), so
// the nodes listen on free ports of 127.0.0.1. config is added to every
// node's command line.
func StartCluster(tb testing.TB, n int, config ...string) *Cluster {
	tb.Helper()
	c := &Cluster{}
	ports := make([][2]int, n) // client port, cluster bus port
	for i := range ports {
		ports[i] = [2]int{freePort(tb), freePort(tb)}
		args := append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(ports[i][0]),
			"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(ports[i][1])}, config...)
		c.Nodes = append(c.Nodes, start(tb, args))
		c.Addrs = append(c.Addrs, net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i][0])))
	}
	ctx := context.Background()
	admins := make([]*redis.Client, n)
	for i, node := range c.Nodes {
		admins[i] = redis.NewClient(&redis.Options{Network: "unix", Addr: node.Socket, DisableIdentity: true})
		defer admins[i].Close()
		lo, hi := i*16384/n, (i+1)*16384/n-1
		if err := admins[i].Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			tb.Fatalf("cluster node %d: CLUSTER ADDSLOTSRANGE %d %d: %v", i, lo, hi, err)
		}
		if i > 0 {
			if err := admins[0].Do(ctx, "CLUSTER", "MEET", "127.0.0.1", ports[i][0], ports[i][1]).Err(); err != nil {
				tb.Fatalf("cluster node 0: CLUSTER MEET node %d: %v", i, err)
			}
		}
	}
	deadline := time.Now().Add(clusterReadyTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < n; {
		info, err := admins[i].ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d", n)) {
			i++
			continue
		}
		if time.Now().After(deadline) {
			tb.Fatalf("cluster node %d not ok after %v: %v\n%s", i, clusterReadyTimeout, err, info)
		}
		<-tick.C
	}
	return c
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
