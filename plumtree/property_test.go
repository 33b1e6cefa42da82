package plumtree

import (
	"testing"
	"time"

	"pgregory.net/rapid"
)

// Section 3 (correctness): on any connected overlay, with any interleaving
// of concurrent broadcasts from any nodes, including several nodes
// broadcasting the same content-derived ID, every node delivers every
// message exactly once, except the nodes that broadcast it, which deliver it
// never. That holds with 10% of the payloads lost (with AnnounceToEager, so
// that every link can repair); with 30% lost, when a node may exhaust its
// GRAFT attempts, a message is still never delivered twice.
func TestEachMessageDeliveredExactlyOnce(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		nodes := rapid.IntRange(2, 40).Draw(rt, "nodes")
		degree := rapid.IntRange(2, 6).Draw(rt, "degree")
		seed := rapid.Uint64().Draw(rt, "seed")
		loss := rapid.SampledFrom([]float64{0, 0, 0.1, 0.3}).Draw(rt, "loss")
		batch := time.Duration(rapid.IntRange(1, 30).Draw(rt, "batchMillis")) * time.Millisecond
		net := newSimNetwork(rt, simOptions{
			nodes: nodes, degree: degree, seed: seed,
			config: func(_ int, cfg *Config) {
				cfg.LazyBatchInterval = batch
				cfg.AnnounceToEager = loss > 0
			},
			drop: func(net *simNetwork, from, to int, msg any) bool {
				_, isGossip := msg.(*Gossip)
				return isGossip && loss > 0 && net.rng.Float64() < loss
			},
		})
		originators := map[MessageID]map[int]bool{}
		var sent []MessageID
		for range rapid.IntRange(1, 12).Draw(rt, "broadcasts") {
			source := rapid.IntRange(0, nodes-1).Draw(rt, "source")
			var id MessageID
			if len(sent) > 0 && rapid.Bool().Draw(rt, "reuseID") {
				id = rapid.SampledFrom(sent).Draw(rt, "id")
			} else {
				id = net.randomMessageID()
				sent = append(sent, id)
				originators[id] = map[int]bool{}
			}
			core := net.nodes[source].core
			before := core.Stats().Broadcasts
			net.broadcast(source, id, []byte("m"))
			if core.Stats().Broadcasts == before+1 {
				originators[id][source] = true
			}
			net.run(time.Duration(rapid.IntRange(0, 60).Draw(rt, "gapMillis")) * time.Millisecond)
		}
		net.settle()
		for _, id := range sent {
			for i := range nodes {
				got := net.deliveredTo[simKey{node: i, id: id}]
				switch {
				case originators[id][i] && got != 0:
					rt.Fatalf("node %d delivered its own broadcast %v %d times", i, id, got)
				case got > 1:
					rt.Fatalf("node %d delivered %v %d times", i, id, got)
				case loss <= 0.1 && !originators[id][i] && got != 1:
					rt.Fatalf("node %d delivered %v %d times with loss %.1f, want exactly once", i, id, got, loss)
				}
			}
		}
	})
}
