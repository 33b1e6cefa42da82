package p2p_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/p2p-go/p2p"
)

// ExampleDHT starts two DHT nodes on loopback: the second joins through the
// first, reads the record the first wrote, and answers its broadcast.
func ExampleDHT() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	secret, _ := p2p.ParseSecret(p2p.GenerateSecret()) // share it with every node
	dirA, _ := os.MkdirTemp("", "dht-a")
	dirB, _ := os.MkdirTemp("", "dht-b")
	defer os.RemoveAll(dirA)
	defer os.RemoveAll(dirB)

	a, err := p2p.NewDHT(p2p.DHTConfig{ListenAddr: "127.0.0.1:0", DataDir: dirA, Secret: secret})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer a.Close()
	replies := make(chan string, 1)
	a.React(func(m *p2p.Message) {
		var text string
		if m.Direct && m.Decode(&text) == nil {
			replies <- text
		}
	})
	if err := a.Start(ctx); err != nil { // no bootstrap: a new network
		fmt.Println(err)
		return
	}

	b, err := p2p.NewDHT(p2p.DHTConfig{
		ListenAddr: "127.0.0.1:0", DataDir: dirB, Secret: secret,
		Bootstrap: []string{a.Addr()},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	b.React(func(m *p2p.Message) {
		_ = m.Reply(ctx, "pong")
	})
	if err := b.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	select { // Start joins in the background
	case <-b.Joined():
	case <-ctx.Done():
		fmt.Println("b did not join")
		return
	}

	// A record signed by a's key: only a can change it.
	key, err := a.Put(ctx, "config", map[string]int{"workers": 8})
	if err != nil {
		fmt.Println(err)
		return
	}
	rec, err := b.Get(ctx, key)
	if err != nil {
		fmt.Println(err)
		return
	}
	var config struct{ Workers int }
	_ = rec.Decode(&config)
	fmt.Println("workers:", config.Workers, "written by a:", rec.Writer == a.ID())

	if err := a.Send(ctx, "ping"); err != nil {
		fmt.Println(err)
		return
	}
	select {
	case text := <-replies:
		fmt.Println("reply:", text)
	case <-ctx.Done():
		fmt.Println(ctx.Err())
	}
	// Output:
	// workers: 8 written by a: true
	// reply: pong
}
