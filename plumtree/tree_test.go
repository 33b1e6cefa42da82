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
			if _, ok := dist[j]; !ok && net.alive(j) {
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
		prunesBefore := net.sentByType()["*plumtree.Prune"]
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
		prunes := net.sentByType()["*plumtree.Prune"] - prunesBefore
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

// treeParent returns the neighbour node i took for its parent, or -1.
func treeParent(net *simNetwork, i int) int {
	c := net.nodes[i].core
	if c.tree.parent == nil {
		return -1
	}
	return net.byID[c.tree.parent.info.ID]
}

// A link that one end dropped while the other still counts it (over the
// real transport the overlay reports a link to each end separately, and
// an end can miss the other's departure) must not cut the child's subtree
// off: the child's payloads reach the parent as from a stranger, which
// answers "no route through me", and the child chooses another parent. The
// broadcasts after the first then need no GRAFT. Without the answer every
// broadcast reached the subtree by GRAFT only, after timer 1.
func TestRootedTreeLinkDroppedAtOneEndStopsCostingGrafts(t *testing.T) {
	const nodes = 200
	net := newSimNetwork(t, simOptions{nodes: nodes, degree: 5, seed: 11, config: rooted})
	net.settle()
	// A child with a subtree of its own and another route to the root.
	child := -1
	for _, i := range net.liveNodes() {
		p := treeParent(net, i)
		if p < 0 || len(net.nodes[i].core.EagerPeers()) < 3 {
			continue
		}
		child = i
		break
	}
	if child < 0 {
		t.Fatal("no node with a parent and children")
	}
	parent := treeParent(net, child)
	net.step(parent, NeighborDown{Peer: net.nodes[child].info.ID})
	net.settle()
	if treeParent(net, child) != parent {
		t.Fatalf("the child left its parent before any traffic: the test shows nothing")
	}
	grafts := func() uint64 {
		var total uint64
		for _, n := range net.nodes {
			total += n.core.Stats().GraftsSent
		}
		return total
	}
	// The first broadcast finds the cut: the subtree grafts it.
	first := net.broadcast(parent, MessageID{}, payload256)
	net.settle()
	if r := net.report(first); r.delivered != r.receivers {
		t.Fatalf("first broadcast after the cut: delivered to %d of %d", r.delivered, r.receivers)
	}
	if p := treeParent(net, child); p == parent {
		t.Fatalf("the child still takes the node that dropped it for its parent")
	}
	before := grafts()
	for k := range 5 {
		id := net.broadcast((parent+k*37)%nodes, MessageID{}, payload256)
		net.settle()
		if r := net.report(id); r.delivered != r.receivers || r.duplicates != 0 {
			t.Fatalf("broadcast %d: delivered to %d of %d, %d duplicates", k, r.delivered, r.receivers, r.duplicates)
		}
	}
	if g := grafts() - before; g != 0 {
		t.Fatalf("%d GRAFTs for 5 broadcasts after the repair, want none", g)
	}
	var repairs uint64
	for _, n := range net.nodes {
		repairs += n.core.Stats().TreeRepairs
	}
	if repairs == 0 || repairs > 4 {
		t.Fatalf("%d TREE repairs, want a few (the ends must not answer each other forever)", repairs)
	}
}

// A stranger's advertisement or pushed payload is answered with "no route
// through me" (MaxTreeDistance); a stranger's own "no route" is not
// answered, so that two strangers cannot answer each other forever.
func TestRootedTreeAnswersStrangersNoRoute(t *testing.T) {
	c := newTestCore(t, rooted0, peerA)
	c.Drain(nil)
	c.Step(simEpoch, overlay.Received{From: peerC, Msg: &Tree{Root: peerC.ID, Distance: 2, Parent: true}})
	got := sentTo[*Tree](c.Drain(nil), peerC)
	if len(got) != 1 || got[0].Distance != MaxTreeDistance || got[0].Parent {
		t.Fatalf("answer to a stranger's TREE: %+v, want one no-route advertisement", got)
	}
	c.Step(simEpoch, overlay.Received{From: peerC, Msg: &Tree{Root: peerC.ID, Distance: MaxTreeDistance}})
	if got := sentTo[*Tree](c.Drain(nil), peerC); len(got) != 0 {
		t.Fatalf("a stranger's no-route was answered: %+v", got)
	}
	c.Step(simEpoch, overlay.Received{From: peerC, Msg: gossipFrom(testID, 3, "x")})
	if got := sentTo[*Tree](c.Drain(nil), peerC); len(got) != 1 || got[0].Distance != MaxTreeDistance {
		t.Fatalf("answer to a stranger's pushed payload: %+v, want one no-route advertisement", got)
	}
	// A payload sent by its origin itself (a first hop, or the rendezvous
	// relay) is not tree traffic.
	c.Step(simEpoch, overlay.Received{From: origin, Msg: gossipFrom(MessageID{0xBB}, 1, "y")})
	if got := sentTo[*Tree](c.Drain(nil), origin); len(got) != 0 {
		t.Fatalf("a payload from its origin was answered: %+v", got)
	}
}

func rooted0(cfg *Config) { cfg.RootedTree = true }

// A neighbour that says "no route through me" is not a parent and not eager;
// its next advertisement is answered, as a first one is: it comes once the
// neighbour knows of the link, and ours reached it before that.
func TestRootedTreeNoRouteNeighbourIsNotParentAndIsAnsweredLater(t *testing.T) {
	var root peer.ID
	root[len(root)-1] = 1
	c := newTestCore(t, rooted0, peerA, peerB)
	c.Step(simEpoch, overlay.Received{From: peerA, Msg: &Tree{Root: root, Distance: 0}})
	c.Step(simEpoch, overlay.Received{From: peerB, Msg: &Tree{Root: root, Distance: 3}})
	if r, d := c.Root(); r != root || d != 1 {
		t.Fatalf("root %v at %d, want the advertised root at 1", r.Short(), d)
	}
	c.Drain(nil)
	c.Step(simEpoch, overlay.Received{From: peerA, Msg: &Tree{Root: root, Distance: MaxTreeDistance}})
	if r, d := c.Root(); r != root || d != 4 {
		t.Fatalf("after A's no-route: root %v at %d, want the root through B at 4", r.Short(), d)
	}
	wantPeers(t, "eager after A's no-route", c.EagerPeers(), peerB)
	c.Drain(nil)
	c.Step(simEpoch, overlay.Received{From: peerA, Msg: &Tree{Root: root, Distance: 0}})
	outs := c.Drain(nil)
	if got := sentTo[*Tree](outs, peerA); len(got) != 1 || !got[0].Parent {
		t.Fatalf("A's advertisement after its no-route: answers %+v, want one naming A the parent", got)
	}
	wantPeers(t, "eager once A offers a route again", c.EagerPeers(), peerA)
}

// A parent that announces a message instead of pushing it does not take
// this node for its child: it is told again. A neighbour that pushes a
// payload without being a tree link takes this node for its child or its
// parent: it is told this node's real relation to it.
func TestRootedTreeDisagreementsOnTreeLinksAreToldOnce(t *testing.T) {
	var root peer.ID
	root[len(root)-1] = 1
	c := newTestCore(t, rooted0, peerA, peerB)
	c.Step(simEpoch, overlay.Received{From: peerA, Msg: &Tree{Root: root, Distance: 0}})
	c.Step(simEpoch, overlay.Received{From: peerB, Msg: &Tree{Root: root, Distance: 2}})
	c.Drain(nil)
	c.Step(simEpoch, overlay.Received{From: peerA, Msg: &IHave{Announcements: []Announcement{{ID: testID, Round: 2}}}})
	if got := sentTo[*Tree](c.Drain(nil), peerA); len(got) != 1 || !got[0].Parent {
		t.Fatalf("answer to the parent's announcement of a missing message: %+v, want one TREE naming it parent", got)
	}
	c.Step(simEpoch, overlay.Received{From: peerB, Msg: gossipFrom(testID, 4, "x")})
	outs := c.Drain(nil)
	if got := sentTo[*Tree](outs, peerB); len(got) != 1 || got[0].Parent || got[0].Distance != 1 {
		t.Fatalf("answer to a push from a non-tree neighbour: %+v, want one TREE, not naming it parent", got)
	}
	if len(delivered(outs)) != 1 {
		t.Fatalf("the payload was not delivered")
	}
	// Its announcement of a message seen, and the parent's push, need no
	// answer.
	c.Step(simEpoch, overlay.Received{From: peerA, Msg: &IHave{Announcements: []Announcement{{ID: testID, Round: 2}}}})
	c.Step(simEpoch, overlay.Received{From: peerA, Msg: gossipFrom(MessageID{0xAB}, 2, "y")})
	if got := sentTo[*Tree](c.Drain(nil), peerA); len(got) != 0 {
		t.Fatalf("TREE sent to a parent that behaves: %+v", got)
	}
}
