package tcp_test

import (
	"context"
	"fmt"
	"log"

	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport/tcp"
)

// Two nodes of a closed cluster (same 32-byte secret) connect over
// loopback; each learns the other's authenticated identity.
func Example() {
	secret := []byte("an example secret of 32 bytes!!!")
	newKey := func() *peer.Key {
		key, err := peer.GenerateKey(nil)
		if err != nil {
			log.Fatal(err)
		}
		return key
	}
	listen := func(key *peer.Key) *tcp.Transport {
		t, err := tcp.Listen(tcp.Config{ListenAddr: "127.0.0.1:0", Key: key, Secret: secret})
		if err != nil {
			log.Fatal(err)
		}
		return t
	}
	aliceKey := newKey()
	alice, bob := listen(aliceKey), listen(newKey())
	defer alice.Close()
	defer bob.Close()

	ctx := context.Background()
	conn, err := alice.Dial(ctx, bob.LocalAddr())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Send(ctx, []byte("hello, bob")); err != nil {
		log.Fatal(err)
	}

	inbound, err := bob.Accept(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer inbound.Close()
	msg, err := inbound.Recv()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("bob got %q; sender authenticated as alice: %v\n", msg, inbound.Remote().ID == aliceKey.ID())
	// Output: bob got "hello, bob"; sender authenticated as alice: true
}
