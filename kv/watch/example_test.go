package watch_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/p2p-go/p2p/kv"
	"github.com/p2p-go/p2p/kv/watch"
	"github.com/p2p-go/p2p/peer"
)

// exampleKey derives a node key from a name.
func exampleKey(name string) *peer.Key {
	seed := sha256.Sum256([]byte(name))
	key, _ := peer.KeyFromSeed(seed[:])
	return key
}

// The runtime publishes the store's state, then every Changed output, to a
// Hub; watchers get a snapshot followed by the changes.
func ExampleHub() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	store, _ := kv.New(kv.Config{Key: exampleKey("alice"), Backend: kv.NewMemory()})
	hub := watch.New(0)
	defer hub.Close()
	step := func(input any) {
		store.Step(now, input)
		for _, out := range store.Drain(nil) {
			if c, ok := out.(kv.Changed); ok {
				hub.Publish(c.Record)
			}
		}
	}
	step(kv.Put{Key: "app/mode", Value: []byte("blue")})
	hub.Publish(store.List("")...) // at start; a no-op here

	events, _ := hub.Watch(context.Background(), "app/")
	step(kv.Put{Key: "app/mode", Value: []byte("green")})
	step(kv.Delete{Key: "app/mode"})
	for range 4 {
		e := <-events
		fmt.Printf("initial=%v synced=%v key=%q value=%q deleted=%v\n", e.Initial, e.Synced, e.Record.Key, e.Record.Value, e.Record.Deleted)
	}
	// Output:
	// initial=true synced=false key="app/mode" value="blue" deleted=false
	// initial=false synced=true key="" value="" deleted=false
	// initial=false synced=false key="app/mode" value="green" deleted=false
	// initial=false synced=false key="app/mode" value="" deleted=true
}
