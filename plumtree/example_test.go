package plumtree_test

import (
	"fmt"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/plumtree"
)

// Example wires two cores by hand, as a driver would: one broadcasts, the
// other delivers, and the driver ticks each core at its NextDeadline.
func Example() {
	alice := peer.Info{ID: peer.ID{1}, Addr: "10.0.0.1:7946"}
	bob := peer.Info{ID: peer.ID{2}, Addr: "10.0.0.2:7946"}
	a, err := plumtree.New(plumtree.Config{Self: alice})
	if err != nil {
		panic(err)
	}
	b, err := plumtree.New(plumtree.Config{Self: bob})
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a.Step(now, plumtree.NeighborUp{Peer: bob})
	b.Step(now, plumtree.NeighborUp{Peer: alice})

	a.Step(now, plumtree.Broadcast{Payload: []byte("hello, tree")})
	for _, out := range a.Drain(nil) {
		if send, ok := out.(overlay.Send); ok && send.To.ID == bob.ID {
			// A real driver encodes send.Msg with wire.Marshal here.
			b.Step(now.Add(10*time.Millisecond), overlay.Received{From: alice, Msg: send.Msg})
		}
	}
	for _, out := range b.Drain(nil) {
		if d, ok := out.(plumtree.Deliver); ok {
			fmt.Printf("bob got %q from %s after %d hop\n", d.Payload, d.Origin.Addr, d.Hops)
		}
	}
	fmt.Println("bob's eager peers:", len(b.EagerPeers()))
	_, pending := b.NextDeadline()
	fmt.Println("bob has a timer pending:", pending)
	// Output:
	// bob got "hello, tree" from 10.0.0.1:7946 after 1 hop
	// bob's eager peers: 1
	// bob has a timer pending: false
}
