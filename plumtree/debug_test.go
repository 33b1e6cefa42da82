package plumtree

import "testing"

func TestDebugMiss(t *testing.T) {
	const nodes = 300
	var dropLog []string
	net := newSimNetwork(t, simOptions{
		nodes: nodes, degree: 5, seed: 2,
		drop: func(net *simNetwork, from, to int, msg any) bool {
			_, isGossip := msg.(*Gossip)
			d := isGossip && net.rng.Float64() < 0.2
			_ = dropLog
			return d
		},
	})
	for k := range 14 {
		source := net.rng.IntN(nodes)
		if k == 13 {
			for _, n := range net.nodes {
				_ = n
			}
		}
		id := net.broadcast(source, MessageID{}, payload256)
		net.settle()
		r := net.report(id)
		if r.delivered != r.receivers {
			for i := range net.nodes {
				if i != source && net.deliveredTo[simKey{i, id}] == 0 {
					n := net.nodes[i]
					t.Logf("node %d missed; eager %d lazy %d stats %+v", i, len(n.core.EagerPeers()), len(n.core.LazyPeers()), n.core.Stats())
					for _, j := range net.adj[i] {
						m := net.nodes[j].core
						isEager := false
						for _, p := range m.EagerPeers() {
							if p.ID == n.info.ID {
								isEager = true
							}
						}
						t.Logf("  neighbour %d delivered=%d sees %d eager=%v", j, net.deliveredTo[simKey{j, id}], i, isEager)
					}
				}
			}
			t.Fatal("miss")
		}
	}
}
