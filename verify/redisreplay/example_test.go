package redisreplay_test

import (
	"log"
	"net/http"

	"github.com/redis/go-redis/v9"

	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/redisreplay"
)

// Every instance of a service gives its Verifier the same Redis, so a
// header replayed to any of them is refused.
func ExampleNew() {
	var apple *verify.Client // from verify.NewClient
	var api http.Handler     // the service's own handler

	rdb := redis.NewClient(&redis.Options{
		Addr:                  "redis.internal:6379",
		ContextTimeoutEnabled: true, // a check's deadline bounds its SET
		MaxRetries:            -1,   // a retried SET NX would see its own key
	})
	v := &verify.Verifier{Client: apple, Replays: redisreplay.New(rdb, redisreplay.Options{})}
	http.Handle("/api/", verify.Middleware(api, verify.MiddlewareOptions{Verifier: v}))
}

// Open takes a URL, as "attestd verify --replay-redis" does.
func ExampleOpen() {
	store, err := redisreplay.Open("redis://redis.internal:6379/0", redisreplay.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	_ = &verify.Verifier{Replays: store}
}

// OpenMode takes the URL of a Redis Cluster (any of its nodes, the others
// as addr parameters), as "attestd gate --redis-mode cluster" does.
func ExampleOpenMode() {
	store, err := redisreplay.OpenMode("redis://node1:6379?addr=node2:6379&addr=node3:6379", redisreplay.Cluster, redisreplay.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	_ = &verify.Verifier{Replays: store}
}
