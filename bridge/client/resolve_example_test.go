package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/attestd/attestd/bridge/client"
	"github.com/attestd/attestd/bridge/socket"
)

// A Go host names its helper by the LaunchAgent label it registered; the
// socket is found even in the process that has just registered the agent.
func ExampleResolve() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, where, err := client.Resolve(ctx, socket.Lookup{Agent: "com.example.Host.attestd"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	tok, err := c.Token(ctx)
	if err != nil {
		log.Fatalf("attestd at %s: %v", where, err)
	}
	fmt.Println(tok[:3])
}
