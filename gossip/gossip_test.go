package gossip

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/plumtree"
)

// deliveries counts, per message, which nodes delivered it and how often.
type deliveries map[plumtree.MessageID]map[int]int

func (d deliveries) record(n *testNode, out any) {
	if del, ok := out.(Deliver); ok && !del.Direct {
		if d[del.ID] == nil {
			d[del.ID] = map[int]int{}
		}
		d[del.ID][n.index]++
	}
}

func settledNet(t *testing.T, nodes int, seed uint64) (*testNet, deliveries) {
	t.Helper()
	net := newTestNet(t, seed)
	got := deliveries{}
	net.onOutput = got.record
	net.joinAll(nodes, Config{})
	if took, ok := net.runUntil(time.Minute, func() bool { return net.connected() && allMembersKnown(net) }); !ok {
		t.Fatalf("overlay of %d nodes not connected with full member lists after %v", nodes, took)
	}
	return net, got
}

func allMembersKnown(net *testNet) bool {
	live := len(net.alive())
	for _, n := range net.alive() {
		if len(n.core.Members()) != live {
			return false
		}
	}
	return true
}

// TestEveryBroadcastDeliveredExactlyOnceOnEveryNode checks Plumtree's
// reliability claim on the composed overlay: every node but the sender
// delivers every message exactly once, with every message encoded and decoded
// by the wire codec on the way.
func TestEveryBroadcastDeliveredExactlyOnceOnEveryNode(t *testing.T) {
	net, got := settledNet(t, 100, 1)
	net.encode = true
	clear(got)
	const messages = 30
	senders := map[plumtree.MessageID]int{}
	for i := range messages {
		sender := net.nodes[net.rand.IntN(len(net.nodes))]
		net.step(sender, Broadcast{Topic: 1, Payload: []byte{byte(i), 'x'}})
		net.run(50 * time.Millisecond)
		for id, byNode := range got {
			if _, known := senders[id]; !known && len(byNode) > 0 {
				senders[id] = sender.index
			}
		}
	}
	net.run(5 * time.Second)
	if len(got) != messages {
		t.Fatalf("%d distinct messages delivered, want %d", len(got), messages)
	}
	for id, byNode := range got {
		if len(byNode) != len(net.nodes)-1 {
			t.Errorf("message %v delivered by %d nodes, want %d", id, len(byNode), len(net.nodes)-1)
		}
		for node, count := range byNode {
			if count != 1 {
				t.Errorf("message %v delivered %d times by node %d", id, count, node)
			}
		}
	}
}

// TestMemberListsConvergeAfterJoins checks that every node learns every
// other member, though HyParView shows each only a few neighbours.
func TestMemberListsConvergeAfterJoins(t *testing.T) {
	net, _ := settledNet(t, 60, 2)
	for _, n := range net.nodes {
		if got := len(n.core.Members()); got != 60 {
			t.Fatalf("node %d knows %d members, want 60", n.index, got)
		}
		if nb := len(n.core.Neighbors()); nb == 0 || nb > 5 {
			t.Fatalf("node %d has %d neighbours", n.index, nb)
		}
	}
}

func knows(n *testNode, id peer.ID) bool {
	for _, m := range n.core.Members() {
		if m.ID == id {
			return true
		}
	}
	return false
}

// TestCrashedMemberDropsOutWithinTheDocumentedBound crashes a node silently
// (no link reset: only keepalives reveal it) and checks that every member
// list drops it within FailureTimeout + keepalive + ProbeTimeout + 1 s.
func TestCrashedMemberDropsOutWithinTheDocumentedBound(t *testing.T) {
	net, _ := settledNet(t, 50, 3)
	victim := net.nodes[17]
	net.crashQuietly(victim) // silent crash: links are not reset
	bound := 4*time.Second + time.Second + 2*DefaultProbeTimeout + time.Second
	took, ok := net.runUntil(bound, func() bool {
		for _, n := range net.alive() {
			if knows(n, victim.info.ID) {
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("crashed member still listed after %v", took)
	}
	t.Logf("crashed member dropped from every member list after %v (bound %v)", took, bound)
}

// TestLeaveIsAnnouncedToEveryMember checks the polite leave.
func TestLeaveIsAnnouncedToEveryMember(t *testing.T) {
	net, _ := settledNet(t, 40, 4)
	leaver := net.nodes[5]
	left := 0
	net.onOutput = func(n *testNode, out any) {
		if d, ok := out.(MemberDown); ok && d.Peer.ID == leaver.info.ID && d.Left {
			left++
		}
	}
	net.step(leaver, Leave{})
	net.run(2 * time.Second)
	net.crashQuietly(leaver)
	if left != 39 {
		t.Fatalf("%d members saw the leave, want 39", left)
	}
}

// TestPartitionHealsIntoOneOverlay partitions the network, lets each side
// declare the other dead, heals it, and checks that the overlays reconnect,
// member lists merge and a broadcast reaches everyone again.
func TestPartitionHealsIntoOneOverlay(t *testing.T) {
	net, got := settledNet(t, 40, 5)
	a, b := net.nodes[:25], net.nodes[25:]
	net.partition(a, b)
	if took, ok := net.runUntil(30*time.Second, func() bool { return len(a[0].core.Members()) == 25 && len(b[0].core.Members()) == 15 }); !ok {
		t.Fatalf("sides did not notice the partition after %v: %d and %d members", took, len(a[0].core.Members()), len(b[0].core.Members()))
	}
	net.heal()
	took, ok := net.runUntil(5*time.Minute, func() bool { return net.connected() && allMembersKnown(net) })
	if !ok {
		t.Fatalf("not healed after %v", took)
	}
	t.Logf("overlay and member lists healed %v after the partition ended (sync interval %v)", took, DefaultSyncInterval)
	clear(got)
	net.step(b[3], Broadcast{Topic: 1, Payload: []byte("after")})
	net.run(5 * time.Second)
	for _, byNode := range got {
		if len(byNode) != 39 {
			t.Fatalf("broadcast after heal reached %d nodes, want 39", len(byNode))
		}
	}
}

// TestDirectMessageReachesOnlyItsTarget checks Direct and that it is not
// broadcast.
func TestDirectMessageReachesOnlyItsTarget(t *testing.T) {
	net, _ := settledNet(t, 10, 6)
	var got []int
	net.onOutput = func(n *testNode, out any) {
		if d, ok := out.(Deliver); ok && d.Direct {
			got = append(got, n.index)
			if d.Origin.ID != net.nodes[0].info.ID || string(d.Payload) != "hi" {
				t.Errorf("direct message: %+v", d)
			}
		}
	}
	net.step(net.nodes[0], Direct{To: net.nodes[7].info, Topic: 1, Payload: []byte("hi")})
	net.run(time.Second)
	if len(got) != 1 || got[0] != 7 {
		t.Fatalf("direct message delivered to %v, want [7]", got)
	}
}

// TestOversizedAndReservedBroadcastsFail checks local request validation.
func TestOversizedAndReservedBroadcastsFail(t *testing.T) {
	net := newTestNet(t, 7)
	var failed int
	net.onOutput = func(_ *testNode, out any) {
		if _, ok := out.(Failed); ok {
			failed++
		}
	}
	n := net.addNode(Config{MaxPayload: 10})
	net.step(n, Join{})
	net.step(n, Broadcast{Topic: 1, Payload: make([]byte, 11)})
	net.step(n, Broadcast{Topic: TopicMembership, Payload: []byte("x")})
	net.step(n, Direct{To: n.info, Topic: 1, Payload: make([]byte, 11)})
	if failed != 3 {
		t.Fatalf("%d requests failed, want 3", failed)
	}
}

// TestMemberListsConvergeWhenNodesJoinTogether: when nodes join within
// microseconds of each other, early ALIVE broadcasts reach only the part of
// the overlay that exists; member-list push-pull, which speeds up while it
// brings news, completes every list within seconds.
func TestMemberListsConvergeWhenNodesJoinTogether(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		net := newTestNet(t, seed)
		net.latency = time.Millisecond
		for i := range 30 {
			node := net.addNode(Config{})
			var contacts []string
			if i > 0 {
				contacts = []string{net.nodes[net.rand.IntN(i)].info.Addr}
			}
			net.step(node, Join{Contacts: contacts})
			net.run(100 * time.Microsecond)
		}
		took, ok := net.runUntil(10*time.Second, func() bool { return allMembersKnown(net) })
		if !ok {
			t.Fatalf("seed %d: member lists incomplete after %v", seed, took)
		}
		t.Logf("seed %d: every member list complete %v after the joins", seed, took)
	}
}

// TestLonelyNodeRejoinsThroughAnyLiveMember: a node whose every neighbour,
// backup and bootstrap contact has crashed still knows live members from its
// member list; it is back in a connected overlay soon after.
func TestLonelyNodeRejoinsThroughAnyLiveMember(t *testing.T) {
	net, _ := settledNet(t, 30, 8)
	lonely := net.addNode(Config{})
	net.step(lonely, Join{Contacts: []string{net.nodes[0].info.Addr}})
	if took, ok := net.runUntil(time.Minute, func() bool { return net.connected() && allMembersKnown(net) }); !ok {
		t.Fatalf("the new node did not settle in %v", took)
	}
	doomed := map[int]bool{0: true} // its bootstrap contact
	for _, p := range append(lonely.core.Neighbors(), lonely.core.PassivePeers()...) {
		doomed[net.byID[p.ID].index] = true
	}
	for i := range doomed {
		net.kill(net.nodes[i])
	}
	took, ok := net.runUntil(2*time.Minute, func() bool {
		for _, p := range lonely.core.Neighbors() {
			if net.byID[p.ID].alive() {
				return net.connected()
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("node with dead neighbours, backups and contact still alone after %v (bridges %d)", took, lonely.core.Stats().Bridges)
	}
	// Here HyParView's own repair usually gets there first (other nodes
	// hold the node in their passive views); the bridge joins are what
	// brought back the lone node of the 200-node memnet test.
	t.Logf("rejoined %v after %d nodes around it crashed (bridge joins: %d)", took, len(doomed), lonely.core.Stats().Bridges)
}

// TestIslandsWithFullMemberListsAreJoined builds the state a mass failure can
// leave behind: two overlays with no link between them, whose members all
// know and can probe each other. Probes carrying recent broadcast IDs (and a
// beacon, since nothing else is broadcast) show the split, and a bridge join
// links the islands; a broadcast then reaches every node.
func TestIslandsWithFullMemberListsAreJoined(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed", 11+seed), func(t *testing.T) { testIslandsJoined(t, 11+seed) })
	}
}

func testIslandsJoined(t *testing.T, seed uint64) {
	net := newTestNet(t, seed)
	got := deliveries{}
	net.onOutput = got.record
	// Members that joined before the split learnt each other's records
	// with their introductions; the crossed lists below stand for that
	// history, which a long JoinGrace lets them adopt.
	cfg := Config{JoinGrace: time.Hour}
	net.joinAll(55, cfg)
	var small []*testNode
	for i := range 5 {
		node := net.addNode(cfg)
		var contacts []string
		if i > 0 {
			contacts = []string{small[0].info.Addr}
		}
		net.step(node, Join{Contacts: contacts})
		net.run(20 * time.Millisecond)
		small = append(small, node)
	}
	big := net.nodes[:55]
	net.run(time.Minute)
	if net.connected() {
		t.Fatal("the two overlays are already linked")
	}
	// Cross the member lists, as if each side had synced with the other.
	for _, pair := range [][2][]*testNode{{big, small}, {small, big}} {
		from := pair[1][0]
		for _, n := range pair[0] {
			net.step(n, overlay.Received{From: from.info, Msg: &Sync{Full: true, Reply: true, Entries: from.core.memberList(nil)}})
		}
	}
	if !allMembersKnown(net) {
		t.Fatal("member lists not crossed")
	}
	took, ok := net.runUntil(45*time.Second, net.connected)
	var stats Stats
	for _, n := range net.nodes {
		s := n.core.Stats()
		stats.Bridges += s.Bridges
		stats.IslandsFound += s.IslandsFound
		stats.Beacons += s.Beacons
	}
	if !ok {
		t.Fatalf("islands of 55 and 5 nodes still apart after %v (beacons %d, islands found %d, bridges %d)", took, stats.Beacons, stats.IslandsFound, stats.Bridges)
	}
	t.Logf("islands of 55 and 5 nodes joined after %v (beacons %d, islands found %d, bridges %d)", took, stats.Beacons, stats.IslandsFound, stats.Bridges)
	// Once joined, each old broadcast of either island causes at most about
	// one more bridge (its finder tells its island), and then none.
	bridges := func() (total uint64) {
		for _, n := range net.nodes {
			total += n.core.Stats().Bridges
		}
		return total
	}
	net.run(recentMaxAge + recentMinAge)
	settled := bridges()
	if settled > stats.Bridges+recentSamples {
		t.Errorf("%d more bridge joins after the islands joined, want at most %d", settled-stats.Bridges, recentSamples)
	}
	net.run(time.Minute)
	if more := bridges() - settled; more != 0 {
		t.Errorf("%d bridge joins long after the islands joined, want 0", more)
	}
	if !net.connected() {
		t.Fatal("overlay split again")
	}
	clear(got)
	net.step(small[2], Broadcast{Topic: 1, Payload: []byte("one overlay")})
	net.run(5 * time.Second)
	if len(got) != 1 {
		t.Fatalf("%d broadcasts delivered, want 1", len(got))
	}
	for _, byNode := range got {
		if len(byNode) != 59 {
			t.Fatalf("broadcast reached %d nodes, want 59", len(byNode))
		}
	}
}

// TestConnectedQuietOverlayNeitherBridgesNorChatters: in a connected overlay
// with nothing to broadcast, no probe mistakes a peer for another island, and
// beacons stay near one per ProbeInterval across the whole network.
func TestConnectedQuietOverlayNeitherBridgesNorChatters(t *testing.T) {
	net, _ := settledNet(t, 100, 12)
	before := map[int]Stats{}
	for _, n := range net.nodes {
		before[n.index] = n.core.Stats()
	}
	const quiet = 5 * time.Minute
	net.run(quiet)
	var bridges, beacons uint64
	for _, n := range net.nodes {
		bridges += n.core.Stats().Bridges - before[n.index].Bridges
		beacons += n.core.Stats().Beacons - before[n.index].Beacons
	}
	if bridges != 0 {
		t.Errorf("%d bridge joins in a connected overlay, want 0", bridges)
	}
	if limit := uint64(2 * quiet / DefaultProbeInterval); beacons == 0 || beacons > limit {
		t.Errorf("%d beacons in %v, want between 1 and %d", beacons, quiet, limit)
	}
	t.Logf("%d beacons from 100 quiet nodes in %v", beacons, quiet)
	if !net.connected() {
		t.Error("overlay no longer connected")
	}
	// Newcomers have not seen what was broadcast before they came: that is
	// no reason to bridge either.
	for range 10 {
		node := net.addNode(Config{})
		net.step(node, Join{Contacts: []string{net.nodes[net.rand.IntN(100)].info.Addr}})
		net.run(time.Second)
	}
	net.run(time.Minute)
	for _, n := range net.nodes {
		bridges += n.core.Stats().Bridges - before[n.index].Bridges
	}
	if bridges != 0 {
		t.Errorf("%d bridge joins after 10 nodes joined, want 0", bridges)
	}
}

// The member-list digest does not depend on which member computes it.
func TestListDigestIsTheSameOnEveryMember(t *testing.T) {
	net, _ := settledNet(t, 30, 13)
	want := net.nodes[0].core.listDigest()
	for _, n := range net.nodes[1:] {
		if got := n.core.listDigest(); !bytes.Equal(got, want) {
			t.Fatalf("%s computes another digest than %s for the same member list", n.info.Addr, net.nodes[0].info.Addr)
		}
	}
}
