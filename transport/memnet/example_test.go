package memnet_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport/memnet"
)

// A three-node network with 5 ms latency; a partition then cuts node-3 off.
func Example() {
	network := memnet.New(memnet.Config{Seed: 1, Latency: 5 * time.Millisecond})
	defer network.Close()
	nodes := make([]*memnet.Transport, 3)
	for i := range nodes {
		key, err := peer.GenerateKey(nil)
		if err != nil {
			log.Fatal(err)
		}
		if nodes[i], err = network.Listen(key, fmt.Sprintf("node-%d", i+1)); err != nil {
			log.Fatal(err)
		}
	}
	ctx := context.Background()
	conn, err := nodes[0].Dial(ctx, "node-2")
	if err != nil {
		log.Fatal(err)
	}
	conn.Send(ctx, []byte("hello"))
	inbound, _ := nodes[1].Accept(ctx)
	msg, _ := inbound.Recv()
	fmt.Printf("node-2 got %q from %s\n", msg, inbound.Remote().Addr)

	network.Partition([]string{"node-1", "node-2"}, []string{"node-3"})
	_, err = nodes[0].Dial(ctx, "node-3")
	fmt.Println("dial across the partition:", errors.Is(err, memnet.ErrUnreachable))
	// Output:
	// node-2 got "hello" from node-1
	// dial across the partition: true
}
