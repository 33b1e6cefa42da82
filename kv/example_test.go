package kv_test

import (
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/p2p-go/p2p/kv"
	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
)

// exampleKey derives a node key from a name (a real node keeps a random key
// in its data directory, see peer.LoadOrCreateKey).
func exampleKey(name string) *peer.Key {
	seed := sha256.Sum256([]byte(name))
	key, _ := peer.KeyFromSeed(seed[:])
	return key
}

// A runtime steps the store with local requests and what the Broadcaster and
// the transport deliver, and routes its outputs: first the Persist, written
// to the backend (durably when it says so), then what depends on it. Here
// two stores are wired by hand: a Put on one reaches the other through its
// Broadcast payload.
func Example() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	aliceKey, bobKey := exampleKey("alice"), exampleKey("bob")
	alice := peer.Info{ID: aliceKey.ID(), Addr: "alice:7000"}
	backendA := kv.NewMemory()
	storeA, _ := kv.New(kv.Config{Key: aliceKey, Backend: backendA})
	storeB, _ := kv.New(kv.Config{Key: bobKey, Backend: kv.NewMemory()})

	put, _ := kv.PutJSON(1, "service/limits", map[string]int{"connections": 100})
	storeA.Step(now, put)
	for _, out := range storeA.Drain(nil) {
		switch o := out.(type) {
		case kv.Persist:
			// Before anything that follows: the Result promises the write
			// is on this node's disk.
			err := o.WriteTo(backendA)
			storeA.Advance(o.Seq, err)
			fmt.Println("persist:", len(o.Put), "record, durable:", o.Durable, err)
		case kv.Result:
			fmt.Println("put:", o.Err)
		case kv.Broadcast:
			// The runtime hands o.Payload to the Broadcaster; every member
			// gets it as a FromBroadcast input.
			storeB.Step(now, kv.FromBroadcast{From: alice, Payload: o.Payload})
		}
	}
	var limits map[string]int
	found, _ := kv.GetJSON(storeB, "service/limits", &limits)
	fmt.Println("bob sees:", found, limits["connections"])
	fmt.Println("same digest:", storeA.Digest() == storeB.Digest())
	// Output:
	// persist: 1 record, durable: true <nil>
	// put: <nil>
	// bob sees: true 100
	// same digest: true
}

// Anti-entropy messages are direct: the runtime sends overlay.Send outputs
// to the peer, which steps its store with overlay.Received.
func Example_antiEntropy() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	aliceKey, bobKey := exampleKey("alice"), exampleKey("bob")
	alice := peer.Info{ID: aliceKey.ID(), Addr: "alice:7000"}
	bob := peer.Info{ID: bobKey.ID(), Addr: "bob:7000"}
	stores := map[peer.ID]*kv.Store{}
	stores[alice.ID], _ = kv.New(kv.Config{Key: aliceKey, Backend: kv.NewMemory()})
	stores[bob.ID], _ = kv.New(kv.Config{Key: bobKey, Backend: kv.NewMemory()})
	infos := map[peer.ID]peer.Info{alice.ID: alice, bob.ID: bob}

	// Bob wrote while Alice was away: the broadcast is lost.
	stores[bob.ID].Step(now, kv.Put{ReqID: 1, Key: "feature/x", Value: []byte("on")})
	stores[bob.ID].Drain(nil)

	// Alice comes back: the overlay reports Bob as a neighbour.
	pending := []struct {
		to    peer.ID
		input any
	}{{alice.ID, kv.NeighborUp{Peer: bob}}}
	for len(pending) > 0 {
		next := pending[0]
		pending = pending[1:]
		stores[next.to].Step(now, next.input)
		for _, out := range stores[next.to].Drain(nil) {
			if send, ok := out.(overlay.Send); ok {
				pending = append(pending, struct {
					to    peer.ID
					input any
				}{send.To.ID, overlay.Received{From: infos[next.to], Msg: send.Msg}})
			}
		}
	}
	rec, _ := stores[alice.ID].Get("feature/x")
	fmt.Printf("alice: %s, repaired %d\n", rec.Value, stores[alice.ID].Stats().RecordsRepaired)
	// Output:
	// alice: on, repaired 1
}
