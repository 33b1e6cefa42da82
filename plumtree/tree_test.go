package plumtree

import (
	"slices"
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
)

// Tests of Config.RootedTree: the eager links kept as one spanning tree
// rooted at the smallest ID and shaped by hop distance to it.

func rooted(_ int, cfg *Config) { cfg.RootedTree = true }

// eagerTree checks that the live nodes' eager links are symmetric and form
// one spanning tree of them, and returns each node's depth from root.
func eagerTree(t *testing.T, net *simNetwork, root int) map[int]int {
	t.Helper()
	live := net.liveNodes()
	edges := 0
	adj := map[int][]int{}
	for _, i := range live {
		for _, p := range net.nodes[i].core.EagerPeers() {
			j := net.byID[p.ID]
			if !slices.ContainsFunc(net.nodes[j].core.EagerPeers(), func(q peer.Info) bool { return q.ID == net.nodes[i].info.ID }) {
				t.Fatalf("node %d pushes eagerly to %d, which does not push back", i, j)
			}
			adj[i] = append(adj[i], j)
			if i < j {
				edges++
			}
		}
	}
	if edges != len(live)-1 {
		t.Fatalf("%d eager links between %d live nodes, want a tree (%d)", edges, len(live), len(live)-1)
	}
	depth := map[int]int{root: 0}
	queue := []int{root}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		for _, j := range adj[i] {
			if _, ok := depth[j]; !ok {
				depth[j] = depth[i] + 1
				queue = append(queue, j)
			}
		}
	}
	if len(depth) != len(live) {
		t.Fatalf("the eager tree spans %d of %d live nodes", len(depth), len(live))
	}
	return depth
}

// smallestLive returns the live node with the smallest ID.
func smallestLive(net *simNetwork) int {
	best := -1
	for _, i := range net.liveNodes() {
		if best < 0 || net.nodes[i].info.ID.Compare(net.nodes[best].info.ID) < 0 {
			best = i
		}
	}
	return best
}

// hopDistances returns the hop distance of every live node from root over
// live links.
func hopDistances(net *simNetwork, root int) map[int]int {
	dist := map[int]int{root: 0}
	queue := []int{root}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		for _, j := range net.adj[i] {
			if _, ok := dist[j]; !ok && net.nodes[j].alive {
				dist[j] = dist[i] + 1
				queue = append(queue, j)
			}
		}
	}
	return dist
}

// checkShortestPathTree checks that every live node knows the smallest live
// ID as root, and that its tree depth and advertised distance are its hop
// distance to that root: the tree is a breadth-first tree.
func checkShortestPathTree(t *testing.T, net *simNetwork) {
	t.Helper()
	root := smallestLive(net)
	depth := eagerTree(t, net, root)
	want := hopDistances(net, root)
	for _, i := range net.liveNodes() {
		gotRoot, gotDist := net.nodes[i].core.Root()
		if gotRoot != net.nodes[root].info.ID {
			t.Fatalf("node %d takes %v for the root, want node %d (%v)", i, gotRoot.Short(), root, net.nodes[root].info.ID.Short())
		}
		if gotDist != want[i] || depth[i] != want[i] {
			t.Fatalf("node %d: distance %d and tree depth %d, want its hop distance %d to the root", i, gotDist, depth[i], want[i])
		}
	}
}

// The rooted tree is a breadth-first tree from the smallest ID: its depth is
// the root's eccentricity, not the sum of the reshapings that the paper's
// prune-on-duplicate goes through.
func TestRootedTreeIsBreadthFirstTreeFromSmallestID(t *testing.T) {
	net := newSimNetwork(t, simOptions{nodes: 300, degree: 5, seed: 3, config: rooted})
	net.settle()
	checkShortestPathTree(t, net)
}

// Broadcasts from random origins that overlap in flight (one every 2 ms,
// while one takes tens of ms to cross) neither prune links nor cut the tree
// apart: in the paper's mode each of them prunes a different edge of the same
// cycle, and the eager links fall apart into pieces joined again by GRAFTs.
func TestRootedTreeStaysWholeUnderOverlappingBroadcasts(t *testing.T) {
	const nodes = 500
	for _, mode := range []struct {
		name   string
		config func(int, *Config)
	}{{"paper", nil}, {"rooted", rooted}} {
		net := newSimNetwork(t, simOptions{nodes: nodes, degree: 5, seed: 5, config: mode.config})
		net.settle()
		// A first broadcast lets the paper's mode prune its flood.
		net.broadcast(0, MessageID{}, payload256)
		net.settle()
		prunesBefore := net.sentByType["*plumtree.Prune"]
		var sent []MessageID
		for range 100 {
			sent = append(sent, net.broadcast(net.rng.IntN(nodes), MessageID{}, payload256))
			net.run(2 * time.Millisecond)
		}
		net.settle()
		var rmr float64
		for _, id := range sent {
			r := net.report(id)
			if r.delivered != r.receivers || r.duplicates != 0 {
				t.Fatalf("%s: delivered to %d of %d with %d duplicate deliveries", mode.name, r.delivered, r.receivers, r.duplicates)
			}
			rmr += r.rmr / float64(len(sent))
		}
		prunes := net.sentByType["*plumtree.Prune"] - prunesBefore
		t.Logf("%s: RMR %.3f, %d PRUNEs during the overlapping broadcasts", mode.name, rmr, prunes)
		if mode.config == nil {
			continue
		}
		if prunes != 0 || rmr > 0.05 {
			t.Fatalf("rooted: RMR %.3f and %d PRUNEs, want at most 0.05 and none", rmr, prunes)
		}
		checkShortestPathTree(t, net)
	}
}

// When the root fails, the distances to it that circulate around loops grow
// until MaxTreeDistance, then the next smallest ID becomes the root, and the
// tree is again a breadth-first tree that carries every broadcast.
func TestRootedTreeRebuildsAfterRootFails(t *testing.T) {
	const nodes = 200
	net := newSimNetwork(t, simOptions{nodes: nodes, degree: 5, seed: 7, config: rooted})
	net.settle()
	root := smallestLive(net)
	net.kill(root)
	net.settle()
	checkShortestPathTree(t, net)
	id := net.broadcast((root+1)%nodes, MessageID{}, payload256)
	net.settle()
	r := net.report(id)
	if r.delivered != r.receivers || r.rmr > 0.05 {
		t.Fatalf("after the root failed: delivered to %d of %d, RMR %.3f", r.delivered, r.receivers, r.rmr)
	}
}

// A duplicate payload on a tree link does not prune it, and PRUNE and GRAFT
// do not change which links are eager: only the tree does, once the
// neighbours have advertised their routes.
func TestRootedTreeLinksIgnorePruneAndDuplicates(t *testing.T) {
	c := newTestCore(t, func(cfg *Config) { cfg.RootedTree = true }, peerA, peerB)
	// A neighbour not heard from yet is eager, as every new link is in the
	// paper, so that nothing goes by it while the link comes up.
	wantPeers(t, "eager before any advertisement", c.EagerPeers(), peerA, peerB)
	var root peer.ID // smaller than the test IDs, which are hashes
	root[len(root)-1] = 1
	for _, p := range []peer.Info{peerA, peerB} {
		c.Step(simEpoch, overlay.Received{From: p, Msg: &Tree{Root: root, Distance: 1}})
	}
	wantParent := peerA // the first to offer the best distance: ties keep the parent
	wantPeers(t, "eager after the advertisements", c.EagerPeers(), wantParent)
	if gotRoot, d := c.Root(); gotRoot != root || d != 2 {
		t.Fatalf("root %v at %d, want %v at 2", gotRoot.Short(), d, root.Short())
	}
	c.Drain(nil)
	c.Step(simEpoch, overlay.Received{From: wantParent, Msg: gossipFrom(testID, 3, "x")})
	c.Step(simEpoch, overlay.Received{From: wantParent, Msg: gossipFrom(testID, 3, "x")})
	c.Step(simEpoch, overlay.Received{From: wantParent, Msg: &Prune{}})
	outs := c.Drain(nil)
	if p := sentTo[*Prune](outs, wantParent); len(p) != 0 {
		t.Fatalf("a duplicate on the tree link was answered with PRUNE")
	}
	wantPeers(t, "eager after a duplicate and a PRUNE", c.EagerPeers(), wantParent)
}

// A node's first advertisement is answered with this node's, since the one
// sent when the link came up may have arrived before the neighbour knew of
// the link; advertisements from strangers are counted and ignored.
func TestRootedTreeAnswersFirstAdvertisementAndIgnoresStrangers(t *testing.T) {
	c := newTestCore(t, func(cfg *Config) { cfg.RootedTree = true }, peerA)
	c.Drain(nil)
	c.Step(simEpoch, overlay.Received{From: peerA, Msg: &Tree{Root: peerA.ID, Distance: 0}})
	if got := sentTo[*Tree](c.Drain(nil), peerA); len(got) != 1 {
		t.Fatalf("%d TREE answers to a first advertisement, want 1", len(got))
	}
	c.Step(simEpoch, overlay.Received{From: peerA, Msg: &Tree{Root: peerA.ID, Distance: 0}})
	if got := sentTo[*Tree](c.Drain(nil), peerA); len(got) != 0 {
		t.Fatalf("a repeated advertisement was answered %d times, want no answer", len(got))
	}
	before := c.Stats().FromStrangers
	c.Step(simEpoch, overlay.Received{From: peerC, Msg: &Tree{Root: peer.ID{1}, Distance: 0}})
	if c.Stats().FromStrangers != before+1 {
		t.Fatalf("a stranger's TREE was not counted")
	}
	if r, _ := c.Root(); r == (peer.ID{1}) {
		t.Fatalf("a stranger's advertisement changed the root")
	}
	c.Step(simEpoch, overlay.Received{From: peerA, Msg: &Tree{}})
	if c.Stats().Refused == 0 {
		t.Fatalf("a TREE with a zero root was not refused")
	}
}
