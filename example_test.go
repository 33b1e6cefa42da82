package p2p_test

import (
	"context"
	"fmt"
	"os"

	"github.com/p2p-go/p2p"
)

// Example runs two nodes on loopback: the second joins through the first,
// sends a message to everybody, and the first answers it directly.
func Example() {
	ctx := context.Background()
	secret, _ := p2p.ParseSecret(p2p.GenerateSecret())
	dirA, _ := os.MkdirTemp("", "p2p-example")
	dirB, _ := os.MkdirTemp("", "p2p-example")
	defer os.RemoveAll(dirA)
	defer os.RemoveAll(dirB)

	a, err := p2p.NewBroadcaster(p2p.Config{ListenAddr: "127.0.0.1:0", DataDir: dirA, Secret: secret})
	if err != nil {
		panic(err)
	}
	defer a.Close()
	a.React(func(m *p2p.Message) {
		var hello struct{ Hi string }
		if m.Decode(&hello) == nil && hello.Hi != "" {
			fmt.Println("a received:", hello.Hi)
			m.Reply(ctx, map[string]string{"welcome": hello.Hi})
		}
	})
	a.Start(ctx) // no bootstrap addresses: a new network

	b, err := p2p.NewBroadcaster(p2p.Config{ListenAddr: "127.0.0.1:0", DataDir: dirB, Secret: secret, Bootstrap: []string{a.Addr()}})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	replies := make(chan string, 1)
	b.React(func(m *p2p.Message) {
		var answer struct{ Welcome string }
		if m.Decode(&answer) == nil && m.Direct {
			replies <- answer.Welcome
		}
	})
	b.Start(ctx)
	<-b.Joined()

	b.Send(ctx, map[string]string{"hi": "bob"})
	fmt.Println("b got a reply for:", <-replies)
	// Output:
	// a received: bob
	// b got a reply for: bob
}
