package hyparview_test

import (
	"fmt"
	"time"

	"github.com/p2p-go/p2p/hyparview"
	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
)

// Example shows the driver's side of the contract: feed inputs with Step,
// act on the outputs returned by Drain, and tick at NextDeadline.
func Example() {
	self := peer.Info{ID: peer.ID{1}, Addr: "10.0.0.1:7946"}
	core, err := hyparview.New(hyparview.Config{Self: self, Seed: 1})
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	// Join through a contact known only by its address.
	core.Step(now, hyparview.Join{Contacts: []string{"10.0.0.2:7946"}})
	for _, output := range core.Drain(nil) {
		send := output.(overlay.Send)
		fmt.Printf("send %T to %q (ID known: %v)\n", send.Msg, send.To.Addr, !send.To.ID.IsZero())
	}

	// The contact accepts: it asks us, with high priority, to be its neighbour.
	contact := peer.Info{ID: peer.ID{2}, Addr: "10.0.0.2:7946"}
	core.Step(now.Add(20*time.Millisecond), overlay.Received{From: contact, Msg: &hyparview.NeighborMsg{HighPriority: true}})
	for _, output := range core.Drain(nil) {
		switch output := output.(type) {
		case overlay.Connect:
			fmt.Println("keep a link to", output.Peer.Addr)
		case hyparview.NeighborUp:
			fmt.Println("neighbour up:", output.Peer.Addr)
		case hyparview.Joined:
			fmt.Println("joined")
		case overlay.Send:
			fmt.Printf("send %+v to %s\n", output.Msg, output.To.Addr)
		}
	}
	deadline, _ := core.NextDeadline()
	fmt.Println("next tick in", deadline.Sub(now.Add(20*time.Millisecond)))
	fmt.Println("active view:", len(core.ActiveView()))
	// Output:
	// send *hyparview.JoinMsg to "10.0.0.2:7946" (ID known: false)
	// keep a link to 10.0.0.2:7946
	// neighbour up: 10.0.0.2:7946
	// joined
	// send &{_:{} Accept:true} to 10.0.0.2:7946
	// next tick in 980ms
	// active view: 1
}
