package plumtree

import (
	"slices"
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
)

// Recovery of messages missed while cut off (doc.go, Recovery): tests on the
// virtual-time network of harness_test.go.

// unlink removes the link between i and j and tells both ends, as the
// membership overlay would when the link broke.
func (net *simNetwork) unlink(i, j int) {
	remove := func(from, to int) {
		for k, other := range net.adj[from] {
			if other == to {
				net.adj[from] = append(net.adj[from][:k], net.adj[from][k+1:]...)
				return
			}
		}
	}
	remove(i, j)
	remove(j, i)
	net.step(i, NeighborDown{Peer: net.nodes[j].info.ID})
	net.step(j, NeighborDown{Peer: net.nodes[i].info.ID})
}

// isolate cuts every link of node i.
func (net *simNetwork) isolate(i int) {
	for len(net.adj[i]) > 0 {
		net.unlink(i, net.adj[i][0])
	}
}

// linkUp adds a link between i and j and tells both ends, as the membership
// overlay would when it chose the link.
func (net *simNetwork) linkUp(i, j int) {
	net.link(i, j)
	net.step(i, NeighborUp{Peer: net.nodes[j].info})
	net.step(j, NeighborUp{Peer: net.nodes[i].info})
}

// addNode starts a new node now, with no link yet, and returns its index.
func (net *simNetwork) addNode() int {
	i := net.add()
	net.step(i, overlay.Tick{})
	return i
}

// deliveries returns how many times node delivered each of ids.
func (net *simNetwork) deliveries(node int, ids []MessageID) (missing, duplicated int) {
	for _, id := range ids {
		switch n := net.deliveredTo[simKey{node: node, id: id}]; {
		case n == 0:
			missing++
		case n > 1:
			duplicated++
		}
	}
	return missing, duplicated
}

// checkDeliveredOnce fails t unless every live node but the origin delivered
// each of ids exactly once.
func (net *simNetwork) checkDeliveredOnce(t *testing.T, ids []MessageID) {
	t.Helper()
	for _, n := range net.liveNodes() {
		for _, id := range ids {
			if net.messages[id].origin == n {
				continue
			}
			if got := net.deliveredTo[simKey{node: n, id: id}]; got != 1 {
				t.Errorf("node %d delivered message %v %d times, want once", n, id, got)
			}
		}
	}
}

// A node with no link while messages go by hears of them from the first
// neighbour it gets afterwards: the two exchange summaries and it grafts
// what it lacks, each message delivered once.
func TestNodeCutOffRecoversMessagesSentMeanwhileWhenALinkComesUp(t *testing.T) {
	net := newSimNetwork(t, simOptions{nodes: 40, degree: 4, seed: 11})
	net.broadcast(0, MessageID{}, payload256) // shape the tree
	net.settle()
	const cut = 17
	net.isolate(cut)
	var ids []MessageID
	for k := range 12 {
		ids = append(ids, net.broadcast(k%5, MessageID{}, payload256))
		net.run(100 * time.Millisecond)
	}
	net.settle()
	if missing, _ := net.deliveries(cut, ids); missing != len(ids) {
		t.Fatalf("isolated node delivered %d messages while it had no link", len(ids)-missing)
	}
	net.linkUp(cut, 30)
	net.settle()
	net.checkDeliveredOnce(t, ids)
	st := net.nodes[cut].core.Stats()
	if st.MessagesRecovered != uint64(len(ids)) || st.SummariesReceived == 0 {
		t.Errorf("isolated node's stats: %d recovered, %d summaries received; want %d recovered",
			st.MessagesRecovered, st.SummariesReceived, len(ids))
	}
	if other := net.nodes[30].core.Stats(); other.MessagesRecovered != 0 {
		t.Errorf("the node that had every message recovered %d", other.MessagesRecovered)
	}
}

// An island of several nodes, cut off from the rest, recovers every message
// through one new link: the node at its end grafts them, and the island's
// own tree and lazy links carry them to the others.
func TestIslandRecoversEveryMessageThroughOneNewLink(t *testing.T) {
	net := newSimNetwork(t, simOptions{nodes: 60, degree: 4, seed: 5})
	net.broadcast(0, MessageID{}, payload256)
	net.settle()
	island := []int{40, 41, 42, 43, 44, 45}
	inIsland := map[int]bool{}
	for _, i := range island {
		inIsland[i] = true
	}
	for _, i := range island {
		for _, j := range append([]int(nil), net.adj[i]...) {
			if !inIsland[j] {
				net.unlink(i, j)
			}
		}
	}
	for k := 0; k+1 < len(island); k++ {
		if !net.linked(island[k], island[k+1]) {
			net.linkUp(island[k], island[k+1])
		}
	}
	net.settle()
	if reached := net.reachable(0); len(reached) != len(net.nodes)-len(island) {
		t.Fatalf("the cut left %d nodes with node 0, want all %d outside the island", len(reached), len(net.nodes)-len(island))
	}
	if reached := net.reachable(40); len(reached) != len(island) {
		t.Fatalf("the island holds %d nodes, want %d", len(reached), len(island))
	}
	var ids []MessageID
	for k := range 20 {
		ids = append(ids, net.broadcast(k%3, MessageID{}, payload256))
		net.run(50 * time.Millisecond)
	}
	islandID := net.broadcast(42, MessageID{}, payload256) // the island's own news reaches the rest too
	net.settle()
	net.linkUp(45, 10)
	net.settle()
	net.checkDeliveredOnce(t, append(ids, islandID))
}

// A node that starts after messages were sent does not receive them when it
// links up (it never had them to miss: a restarted node would otherwise
// deliver again what it delivered before its restart); it receives what is
// broadcast afterwards.
func TestNewNodeDoesNotReceiveMessagesSentBeforeItStarted(t *testing.T) {
	net := newSimNetwork(t, simOptions{nodes: 20, degree: 4, seed: 2})
	var before []MessageID
	for k := range 5 {
		before = append(before, net.broadcast(k, MessageID{}, payload256))
		net.run(100 * time.Millisecond)
	}
	net.settle()
	net.wait(time.Second)
	newcomer := net.addNode()
	net.linkUp(newcomer, 3)
	net.linkUp(newcomer, 8)
	net.settle()
	if missing, _ := net.deliveries(newcomer, before); missing != len(before) {
		t.Errorf("newcomer delivered %d messages sent before it started", len(before)-missing)
	}
	after := net.broadcast(0, MessageID{}, payload256)
	net.settle()
	if missing, duplicated := net.deliveries(newcomer, []MessageID{after}); missing != 0 || duplicated != 0 {
		t.Errorf("newcomer: later message missing %d, duplicated %d", missing, duplicated)
	}
	if st := net.nodes[newcomer].core.Stats(); st.MessagesRecovered != 0 || st.GraftsSent != 0 {
		t.Errorf("newcomer recovered %d messages with %d grafts", st.MessagesRecovered, st.GraftsSent)
	}
}

// The window is bounded by age: a node cut off for longer than PayloadTTL
// recovers only the messages still kept.
func TestMessagesOlderThanTheWindowAreNotRecovered(t *testing.T) {
	const window = 10 * time.Second
	net := newSimNetwork(t, simOptions{nodes: 20, degree: 4, seed: 9, config: func(_ int, cfg *Config) { cfg.PayloadTTL = window }})
	const cut = 7
	net.isolate(cut)
	old := net.broadcast(0, MessageID{}, payload256)
	net.settle()
	net.wait(window) // run does not move the clock of an idle network
	recent := net.broadcast(1, MessageID{}, payload256)
	net.settle()
	net.linkUp(cut, 12)
	net.settle()
	if missing, _ := net.deliveries(cut, []MessageID{old}); missing != 1 {
		t.Errorf("message older than the window recovered")
	}
	if missing, duplicated := net.deliveries(cut, []MessageID{recent}); missing != 0 || duplicated != 0 {
		t.Errorf("message within the window: missing %d, duplicated %d", missing, duplicated)
	}
}

// The window is bounded by bytes: payloads beyond PayloadCacheBytes are
// evicted oldest first, and a summary lists only the payloads kept.
func TestPayloadCacheIsBoundedByBytes(t *testing.T) {
	const payloadSize = 1000
	const limit = 10 * (payloadSize + PayloadOverhead)
	c := newTestCore(t, func(cfg *Config) { cfg.PayloadCacheBytes = limit }, peerA)
	now := simEpoch
	for i := range 50 {
		now = now.Add(time.Millisecond)
		g := gossipFrom(MessageID{byte(i), 9}, 1, string(make([]byte, payloadSize)))
		g.SentAt = now.UnixMilli()
		c.Step(now, overlay.Received{From: peerA, Msg: g})
		if c.payloads.bytes > limit {
			t.Fatalf("after %d payloads: %d bytes kept, limit %d", i+1, c.payloads.bytes, limit)
		}
	}
	if c.payloads.len() != 10 {
		t.Fatalf("%d payloads kept, want 10", c.payloads.len())
	}
	c.Drain(nil)
	c.Step(now, NeighborUp{Peer: peerB})
	summaries := sentTo[*Summary](c.Drain(nil), peerB)
	if len(summaries) != 1 || len(summaries[0].Entries) != 10 || summaries[0].Entries[0].ID != (MessageID{40, 9}) {
		t.Fatalf("summary to a new neighbour: %+v, want the 10 newest messages, oldest first", summaries)
	}
}

// A summary from a peer that is not a neighbour is ignored and counted.
func TestSummaryFromStrangerIsIgnored(t *testing.T) {
	c := newTestCore(t, nil, peerA)
	c.Step(simEpoch, overlay.Received{From: peerC, Msg: &Summary{Entries: []SummaryEntry{{ID: testID, SentAt: simEpoch.UnixMilli()}}}})
	c.Step(simEpoch.Add(time.Second), overlay.Tick{})
	if outs := c.Drain(nil); len(outs) != 0 || c.Stats().FromStrangers != 1 || c.missing.len() != 0 {
		t.Fatalf("outputs %v, stats %+v, %d missing", outs, c.Stats(), c.missing.len())
	}
}

// Expendable payloads (Config.Expendable) give up their place first: a burst
// of them, more than the cache holds, leaves the others in the recovery
// window; a summary lists what is kept of both kinds, GRAFTs for either are
// answered, and the cache stays within its bound in all. Without
// Expendable the same burst pushes the older message out.
func TestExpendablePayloadsDoNotPushOthersOutOfTheWindow(t *testing.T) {
	const size = 8
	expendable := func(payload []byte) bool { return len(payload) > 0 && payload[0] == 'm' }
	for _, withExpendable := range []bool{true, false} {
		c := newTestCore(t, func(cfg *Config) {
			cfg.PayloadCacheSize = size
			if withExpendable {
				cfg.Expendable = expendable
			}
		}, peerA)
		now := simEpoch
		receive := func(id MessageID, payload string) {
			now = now.Add(time.Millisecond)
			g := gossipFrom(id, 1, payload)
			g.SentAt = now.UnixMilli()
			c.Step(now, overlay.Received{From: peerA, Msg: g})
		}
		kept := []MessageID{{0x01, 1}, {0x01, 2}}
		receive(kept[0], "application message")
		var burst []MessageID
		for i := range 3 * size {
			burst = append(burst, MessageID{0x02, byte(i)})
			receive(burst[i], "member failed")
			if i == size {
				receive(kept[1], "application message")
			}
		}
		c.Drain(nil)
		c.Step(now, NeighborUp{Peer: peerB})
		var listed []MessageID
		for _, s := range sentTo[*Summary](c.Drain(nil), peerB) {
			for _, e := range s.Entries {
				listed = append(listed, e.ID)
			}
		}
		latest := burst[len(burst)-1]
		c.Step(now, overlay.Received{From: peerB, Msg: &Graft{IDs: []MessageID{kept[0], latest}}})
		answered := map[MessageID]bool{}
		for _, g := range sentTo[*Gossip](c.Drain(nil), peerB) {
			answered[g.ID] = true
		}
		if !withExpendable {
			if slices.Contains(listed, kept[0]) || answered[kept[0]] {
				t.Fatalf("without Expendable the burst of %d left the older message in a cache of %d: the test shows nothing", len(burst), size)
			}
			continue
		}
		want := append(slices.Clone(kept), burst[len(burst)-(size-len(kept)):]...)
		if !slices.Equal(listed, want) {
			t.Errorf("summary to a new neighbour lists %v, want the two messages then the %d newest expendable ones, %v", listed, size-len(kept), want)
		}
		if !answered[kept[0]] || !answered[latest] {
			t.Errorf("GRAFT answered for the message: %v, for the latest expendable one: %v; want both", answered[kept[0]], answered[latest])
		}
		if n := c.payloads.len() + c.expendable.len(); n != size {
			t.Errorf("%d payloads kept in all, want the bound %d", n, size)
		}
	}
}

// The bound holds in all: an expendable payload that finds the cache full of
// other payloads takes the place of the oldest, and is the first to go at
// the next arrival, so a burst of them costs the others one place at most.
func TestExpendableCacheKeepsTheBoundInAll(t *testing.T) {
	const size = 4
	c := newTestCore(t, func(cfg *Config) {
		cfg.PayloadCacheSize = size
		cfg.Expendable = func(payload []byte) bool { return len(payload) > 0 && payload[0] == 'm' }
	}, peerA)
	now := simEpoch
	for i := range 10 {
		now = now.Add(time.Millisecond)
		payload := "application message"
		if i%3 == 0 {
			payload = "member failed"
		}
		g := gossipFrom(MessageID{0x03, byte(i)}, 1, payload)
		g.SentAt = now.UnixMilli()
		c.Step(now, overlay.Received{From: peerA, Msg: g})
		if n := c.payloads.len() + c.expendable.len(); n > size {
			t.Fatalf("after %d payloads: %d kept, bound %d", i+1, n, size)
		}
	}
	// The last ten: 0 m, 1, 2, 3 m, 4, 5, 6 m, 7, 8, 9 m. Kept: the three
	// newest messages and the newest expendable one.
	if c.payloads.len() != 3 || c.expendable.len() != 1 {
		t.Fatalf("%d messages and %d expendable payloads kept, want 3 and 1", c.payloads.len(), c.expendable.len())
	}
}
