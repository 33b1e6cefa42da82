package kademlia_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/p2p-go/p2p/kademlia"
	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
)

// A core is driven by stepping it with inputs and draining its outputs. A
// node alone in its network keeps its own records.
func ExampleCore() {
	key, _ := peer.KeyFromSeed(bytes.Repeat([]byte{7}, 32))
	core, err := kademlia.New(kademlia.Config{Self: peer.Info{ID: key.ID(), Addr: "10.0.0.1:6966"}, Signer: key})
	if err != nil {
		panic(err)
	}
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	core.Step(now, kademlia.Put{ReqID: 1, Record: kademlia.Record{Name: []byte("greeting"), Value: []byte("hello")}})
	core.Step(now, kademlia.Get{ReqID: 2, Key: kademlia.MutableKey(key.Public(), []byte("greeting"))})
	for _, out := range core.Drain(nil) {
		switch out := out.(type) {
		case kademlia.PutResult:
			fmt.Println("put:", out.Stored, "copy, err", out.Err)
		case kademlia.GetResult:
			fmt.Printf("get: %s, err %v\n", out.Record.Value, out.Err)
		case overlay.Send:
			fmt.Println("send to", out.To)
		}
	}
	// Output:
	// put: 1 copy, err <nil>
	// get: hello, err <nil>
}

// Records are verified by whoever receives them.
func ExampleNewMutableRecord() {
	key, _ := peer.KeyFromSeed(bytes.Repeat([]byte{9}, 32))
	rec := kademlia.NewMutableRecord(key, []byte("config"), []byte("v1"), 1)
	fmt.Println("valid:", rec.Verify())
	rec.Value = []byte("v2")
	fmt.Println("tampered:", rec.Verify() != nil)
	// Output:
	// valid: <nil>
	// tampered: true
}
