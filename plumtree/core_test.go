package plumtree

import (
	"slices"
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
)

// Unit tests of single-core behaviour, stepping a core by hand with virtual
// time and reading its outputs.

var (
	selfInfo = simInfo(1000)
	peerA    = simInfo(1001)
	peerB    = simInfo(1002)
	peerC    = simInfo(1003)
	origin   = simInfo(1004)
	testID   = MessageID{0xAA, 1}
)

// newTestCore returns a core whose neighbours are the given peers, all eager.
func newTestCore(t testing.TB, adjust func(*Config), neighbours ...peer.Info) *Core {
	t.Helper()
	cfg := Config{Self: selfInfo}
	if adjust != nil {
		adjust(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range neighbours {
		c.Step(simEpoch, NeighborUp{Peer: n})
	}
	return c
}

func gossipFrom(id MessageID, round uint16, payload string) *Gossip {
	return &Gossip{ID: id, Round: round, Origin: origin, Payload: []byte(payload), SentAt: simEpoch.UnixMilli()}
}

// sentTo returns the messages of type M sent to p among outs.
func sentTo[M any](outs []any, p peer.Info) []M {
	var found []M
	for _, out := range outs {
		if s, ok := out.(overlay.Send); ok && s.To.ID == p.ID {
			if m, ok := s.Msg.(M); ok {
				found = append(found, m)
			}
		}
	}
	return found
}

func delivered(outs []any) []Deliver {
	var found []Deliver
	for _, out := range outs {
		if d, ok := out.(Deliver); ok {
			found = append(found, d)
		}
	}
	return found
}

func ids(infos []peer.Info) []peer.ID {
	var out []peer.ID
	for _, i := range infos {
		out = append(out, i.ID)
	}
	return out
}

func wantPeers(t *testing.T, what string, got []peer.Info, want ...peer.Info) {
	t.Helper()
	if !slices.Equal(ids(got), ids(want)) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// Section 3.3: a node delivers a new payload, pushes it to its other eager
// peers with the round incremented, and announces it to its lazy peers.
func TestNewPayloadIsDeliveredPushedAndAnnounced(t *testing.T) {
	c := newTestCore(t, nil, peerA, peerB, peerC)
	c.Step(simEpoch, overlay.Received{From: peerC, Msg: &Prune{}})
	c.Drain(nil)

	c.Step(simEpoch, overlay.Received{From: peerA, Msg: gossipFrom(testID, 3, "hello")})
	outs := c.Drain(nil)
	d := delivered(outs)
	if len(d) != 1 || d[0].ID != testID || d[0].Hops != 3 || string(d[0].Payload) != "hello" || d[0].Origin != origin {
		t.Fatalf("deliveries = %+v, want one of %v with 3 hops from the origin", d, testID)
	}
	if got := sentTo[*Gossip](outs, peerA); len(got) != 0 {
		t.Errorf("payload sent back to its sender")
	}
	if got := sentTo[*Gossip](outs, peerB); len(got) != 1 || got[0].Round != 4 || got[0].Origin != origin {
		t.Errorf("eager peer B got %+v, want the payload with round 4", got)
	}
	if got := sentTo[*Gossip](outs, peerC); len(got) != 0 {
		t.Errorf("lazy peer C got the payload")
	}
	// The announcement to C waits for the batching interval.
	deadline, ok := c.NextDeadline()
	if !ok || !deadline.Equal(simEpoch.Add(DefaultLazyBatchInterval)) {
		t.Fatalf("NextDeadline = %v, %v; want the end of the batching interval", deadline, ok)
	}
	c.Step(deadline, overlay.Tick{})
	ihaves := sentTo[*IHave](c.Drain(nil), peerC)
	if len(ihaves) != 1 || len(ihaves[0].Announcements) != 1 || ihaves[0].Announcements[0] != (Announcement{ID: testID, Round: 4}) {
		t.Fatalf("IHAVEs to C = %+v, want one announcing %v at round 4", ihaves, testID)
	}
}

// Section 3.3: a duplicate payload moves its sender to the lazy set and is
// answered with PRUNE.
func TestDuplicatePayloadPrunesSender(t *testing.T) {
	c := newTestCore(t, nil, peerA, peerB)
	c.Step(simEpoch, overlay.Received{From: peerA, Msg: gossipFrom(testID, 1, "x")})
	c.Drain(nil)
	c.Step(simEpoch, overlay.Received{From: peerB, Msg: gossipFrom(testID, 2, "x")})
	outs := c.Drain(nil)
	if len(delivered(outs)) != 0 {
		t.Fatalf("duplicate delivered again")
	}
	if len(sentTo[*Prune](outs, peerB)) != 1 {
		t.Fatalf("outputs %v: want a PRUNE to the duplicate's sender", outs)
	}
	wantPeers(t, "EagerPeers", c.EagerPeers(), peerA)
	wantPeers(t, "LazyPeers", c.LazyPeers(), peerB)
	if s := c.Stats(); s.DuplicatePayloads != 1 || s.PrunesSent != 1 {
		t.Errorf("stats %+v: want 1 duplicate and 1 PRUNE", s)
	}
}

// Section 3.3: PRUNE moves its sender to the lazy set.
func TestPruneMakesLinkLazy(t *testing.T) {
	c := newTestCore(t, nil, peerA, peerB)
	c.Step(simEpoch, overlay.Received{From: peerB, Msg: &Prune{}})
	wantPeers(t, "EagerPeers", c.EagerPeers(), peerA)
	wantPeers(t, "LazyPeers", c.LazyPeers(), peerB)
}

// Section 3.4: GRAFT makes the link eager again and is answered with the
// payload when it is still cached.
func TestGraftMakesLinkEager(t *testing.T) {
	c := newTestCore(t, nil, peerA, peerB)
	c.Step(simEpoch, overlay.Received{From: peerA, Msg: gossipFrom(testID, 2, "payload")})
	c.Step(simEpoch, overlay.Received{From: peerB, Msg: &Prune{}})
	c.Drain(nil)
	wantPeers(t, "LazyPeers before GRAFT", c.LazyPeers(), peerB)

	unknown := MessageID{0xBB}
	c.Step(simEpoch.Add(time.Second), overlay.Received{From: peerB, Msg: &Graft{IDs: []MessageID{testID, unknown}}})
	outs := c.Drain(nil)
	wantPeers(t, "EagerPeers", c.EagerPeers(), peerA, peerB)
	wantPeers(t, "LazyPeers", c.LazyPeers())
	got := sentTo[*Gossip](outs, peerB)
	if len(got) != 1 || got[0].ID != testID || string(got[0].Payload) != "payload" || got[0].Round != 3 {
		t.Fatalf("answer to GRAFT = %+v, want the payload of %v with round 3", got, testID)
	}
	if s := c.Stats(); s.GraftsReceived != 1 || s.GraftsUnanswered != 1 {
		t.Errorf("stats %+v: want 1 GRAFT received and 1 ID not cached", s)
	}
	// Once the payload has left the cache a GRAFT still makes the link
	// eager but is not answered.
	c.Step(simEpoch, overlay.Received{From: peerB, Msg: &Prune{}})
	c.Step(simEpoch.Add(DefaultPayloadTTL+time.Second), overlay.Received{From: peerB, Msg: &Graft{IDs: []MessageID{testID}}})
	if got := sentTo[*Gossip](c.Drain(nil), peerB); len(got) != 0 {
		t.Errorf("payload sent after its TTL: %+v", got)
	}
	wantPeers(t, "EagerPeers after late GRAFT", c.EagerPeers(), peerA, peerB)
}

// Section 3.4: an announcement of a missing message starts timer 1; when it
// expires the first announcer is grafted and timer 2 started; when that
// expires the next announcer is grafted; the payload stops the timers.
func TestMissingMessageGraftsFirstAnnouncerThenNext(t *testing.T) {
	c := newTestCore(t, nil, peerA, peerB, peerC)
	for _, p := range []peer.Info{peerA, peerB, peerC} {
		c.Step(simEpoch, overlay.Received{From: p, Msg: &Prune{}})
	}
	c.Step(simEpoch, overlay.Received{From: peerB, Msg: &IHave{Announcements: []Announcement{{ID: testID, Round: 2}}}})
	c.Step(simEpoch.Add(time.Millisecond), overlay.Received{From: peerC, Msg: &IHave{Announcements: []Announcement{{ID: testID, Round: 5}}}})
	timer1 := simEpoch.Add(DefaultIHaveTimeout)
	if deadline, ok := c.NextDeadline(); !ok || !deadline.Equal(timer1) {
		t.Fatalf("NextDeadline = %v, %v; want timer 1 at %v", deadline, ok, timer1)
	}
	c.Step(timer1.Add(-time.Nanosecond), overlay.Tick{})
	if outs := c.Drain(nil); len(outs) != 0 {
		t.Fatalf("outputs before timer 1 expired: %v", outs)
	}

	c.Step(timer1, overlay.Tick{})
	outs := c.Drain(nil)
	if g := sentTo[*Graft](outs, peerB); len(g) != 1 || !slices.Equal(g[0].IDs, []MessageID{testID}) {
		t.Fatalf("outputs %v: want GRAFT(%v) to the first announcer", outs, testID)
	}
	if len(outs) != 1 {
		t.Fatalf("outputs %v: want only the GRAFT", outs)
	}
	wantPeers(t, "EagerPeers after GRAFT", c.EagerPeers(), peerB)

	timer2 := timer1.Add(DefaultGraftTimeout)
	if deadline, ok := c.NextDeadline(); !ok || !deadline.Equal(timer2) {
		t.Fatalf("NextDeadline = %v, %v; want timer 2 at %v", deadline, ok, timer2)
	}
	c.Step(timer2, overlay.Tick{})
	outs = c.Drain(nil)
	if g := sentTo[*Graft](outs, peerC); len(g) != 1 {
		t.Fatalf("outputs %v: want GRAFT to the second announcer after timer 2", outs)
	}

	c.Step(timer2.Add(time.Millisecond), overlay.Received{From: peerC, Msg: gossipFrom(testID, 5, "late")})
	if d := delivered(c.Drain(nil)); len(d) != 1 {
		t.Fatalf("payload not delivered after GRAFT: %v", d)
	}
	if c.missing.len() != 0 {
		t.Errorf("%d messages still missing after the payload arrived", c.missing.len())
	}
	if s := c.Stats(); s.PayloadsRecovered != 1 || s.GraftsSent != 2 {
		t.Errorf("stats %+v: want 1 recovered payload after 2 GRAFTs", s)
	}
	// The late answer of B is now a duplicate: B is pruned again.
	c.Step(timer2.Add(2*time.Millisecond), overlay.Received{From: peerB, Msg: gossipFrom(testID, 2, "late")})
	if len(sentTo[*Prune](c.Drain(nil), peerB)) != 1 {
		t.Errorf("late GRAFT answer not pruned")
	}
}

// Section 3.4: a missing message is given up after MaxGraftAttempts GRAFTs,
// going round the announcers, so its timer does not run for ever.
func TestMissingMessageIsAbandonedAfterMaxGrafts(t *testing.T) {
	c := newTestCore(t, nil, peerA, peerB)
	c.Step(simEpoch, overlay.Received{From: peerA, Msg: &IHave{Announcements: []Announcement{{ID: testID, Round: 1}}}})
	c.Step(simEpoch, overlay.Received{From: peerB, Msg: &IHave{Announcements: []Announcement{{ID: testID, Round: 1}}}})
	now := simEpoch
	var targets []peer.ID
	for range 100 {
		deadline, ok := c.NextDeadline()
		if !ok {
			break
		}
		now = deadline
		c.Step(now, overlay.Tick{})
		for _, out := range c.Drain(nil) {
			if s, ok := out.(overlay.Send); ok {
				if _, ok := s.Msg.(*Graft); ok {
					targets = append(targets, s.To.ID)
				}
			}
		}
	}
	if len(targets) != MaxGraftAttempts {
		t.Fatalf("%d GRAFTs sent, want %d", len(targets), MaxGraftAttempts)
	}
	for i, target := range targets {
		want := []peer.ID{peerA.ID, peerB.ID}[i%2]
		if target != want {
			t.Fatalf("GRAFT %d went to %v, want the announcers in turn", i, target.Short())
		}
	}
	if c.missing.len() != 0 || c.Stats().MissingAbandoned != 1 {
		t.Errorf("missing %d, stats %+v: want the message abandoned", c.missing.len(), c.Stats())
	}
}

// Section 3.6: a neighbour that goes down leaves both push sets and every
// announcement list, so it is never grafted.
func TestNeighbourDownIsForgotten(t *testing.T) {
	c := newTestCore(t, nil, peerA, peerB)
	c.Step(simEpoch, overlay.Received{From: peerB, Msg: &Prune{}})
	c.Step(simEpoch, overlay.Received{From: peerB, Msg: &IHave{Announcements: []Announcement{{ID: testID, Round: 1}}}})
	c.Step(simEpoch, NeighborDown{Peer: peerB.ID})
	wantPeers(t, "EagerPeers", c.EagerPeers(), peerA)
	wantPeers(t, "LazyPeers", c.LazyPeers())
	c.Step(simEpoch.Add(DefaultIHaveTimeout), overlay.Tick{})
	if outs := c.Drain(nil); len(outs) != 0 {
		t.Fatalf("outputs %v after the only announcer went down", outs)
	}
	if c.missing.len() != 0 {
		t.Errorf("missing message kept without announcers")
	}
	// Messages from a peer that is no longer a neighbour change nothing.
	c.Step(simEpoch, overlay.Received{From: peerB, Msg: &Graft{IDs: []MessageID{testID}}})
	c.Step(simEpoch, overlay.Received{From: peerB, Msg: &Prune{}})
	wantPeers(t, "EagerPeers", c.EagerPeers(), peerA)
	wantPeers(t, "LazyPeers", c.LazyPeers())
	if got := c.Stats().FromStrangers; got != 2 {
		t.Errorf("FromStrangers = %d, want 2", got)
	}
}

// A node does not deliver its own broadcasts, and drops a Broadcast whose ID
// it has seen (content-derived IDs deduplicate the same event).
func TestOwnBroadcastIsNotDeliveredAndSeenIDsAreDropped(t *testing.T) {
	c := newTestCore(t, nil, peerA)
	c.Step(simEpoch, Broadcast{Payload: []byte("mine")})
	outs := c.Drain(nil)
	pushed := sentTo[*Gossip](outs, peerA)
	if len(pushed) != 1 || pushed[0].Round != 1 || pushed[0].Origin != selfInfo || pushed[0].ID.IsZero() {
		t.Fatalf("outputs %v: want the payload pushed with round 1 and this node as origin", outs)
	}
	if len(delivered(outs)) != 0 {
		t.Fatalf("own broadcast delivered locally")
	}
	// Its echo is a duplicate.
	c.Step(simEpoch, overlay.Received{From: peerA, Msg: pushed[0]})
	if outs := c.Drain(nil); len(delivered(outs)) != 0 || len(sentTo[*Prune](outs, peerA)) != 1 {
		t.Fatalf("echo of own broadcast: outputs %v, want a PRUNE and no delivery", outs)
	}

	c.Step(simEpoch, overlay.Received{From: peerA, Msg: gossipFrom(testID, 1, "theirs")})
	c.Drain(nil)
	c.Step(simEpoch, Broadcast{ID: testID, Payload: []byte("theirs")})
	if outs := c.Drain(nil); len(outs) != 0 {
		t.Fatalf("broadcast of a seen ID produced %v", outs)
	}
	if s := c.Stats(); s.Broadcasts != 1 || s.BroadcastsDropped != 1 {
		t.Errorf("stats %+v: want 1 broadcast sent and 1 dropped", s)
	}
}

// Generated message IDs differ between broadcasts, nodes and restarts, and
// are repeatable for the same seed and time.
func TestGeneratedMessageIDsAreDistinctAndRepeatable(t *testing.T) {
	generate := func(self peer.Info, seed uint64, at time.Time) MessageID {
		c, err := New(Config{Self: self, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		return c.newMessageID(at)
	}
	a := generate(peerA, 1, simEpoch)
	if a != generate(peerA, 1, simEpoch) {
		t.Errorf("same seed, node and time gave different IDs")
	}
	for name, other := range map[string]MessageID{
		"other node":    generate(peerB, 1, simEpoch),
		"other seed":    generate(peerA, 2, simEpoch),
		"restart later": generate(peerA, 1, simEpoch.Add(time.Second)),
	} {
		if other == a {
			t.Errorf("%s gave the same ID", name)
		}
	}
	c := newTestCore(t, nil)
	seen := map[MessageID]bool{}
	for range 1000 {
		id := c.newMessageID(simEpoch)
		if seen[id] || id.IsZero() {
			t.Fatalf("ID %v repeated", id)
		}
		seen[id] = true
	}
}

// Section 3.8: with the optimisation on, a lazy link announcing a message
// at least threshold hops sooner than the eager link delivered it replaces
// that eager link (GRAFT to the lazy peer, PRUNE to the eager one).
func TestOptimizationSwapsEagerLinkForShorterLazyPath(t *testing.T) {
	for _, tc := range []struct {
		name      string
		threshold int
		lazyRound uint16
		wantSwap  bool
	}{
		{"off", 0, 1, false},
		{"gain below threshold", 3, 5, false},
		{"gain at threshold", 3, 4, true},
		{"gain above threshold", 3, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCore(t, func(cfg *Config) { cfg.OptimizationThreshold = tc.threshold }, peerA, peerB)
			c.Step(simEpoch, overlay.Received{From: peerB, Msg: &Prune{}})
			c.Step(simEpoch, overlay.Received{From: peerA, Msg: gossipFrom(testID, 7, "x")})
			c.Drain(nil)
			c.Step(simEpoch, overlay.Received{From: peerB, Msg: &IHave{Announcements: []Announcement{{ID: testID, Round: tc.lazyRound}}}})
			outs := c.Drain(nil)
			swapped := len(sentTo[*Graft](outs, peerB)) == 1 && len(sentTo[*Prune](outs, peerA)) == 1
			if swapped != tc.wantSwap {
				t.Fatalf("outputs %v: swapped = %v, want %v", outs, swapped, tc.wantSwap)
			}
			if tc.wantSwap {
				wantPeers(t, "EagerPeers", c.EagerPeers(), peerB)
				wantPeers(t, "LazyPeers", c.LazyPeers(), peerA)
				if g := sentTo[*Graft](outs, peerB); len(g[0].IDs) != 0 {
					t.Errorf("optimisation GRAFT asks for payloads %v", g[0].IDs)
				}
			}
		})
	}
}

// Announcements are batched: many messages in one interval leave in one
// IHAVE per lazy peer, and an announcement is withdrawn when the peer
// announces the same message to us first.
func TestAnnouncementsAreBatchedPerPeer(t *testing.T) {
	c := newTestCore(t, nil, peerA, peerB)
	c.Step(simEpoch, overlay.Received{From: peerB, Msg: &Prune{}})
	for i := range 10 {
		c.Step(simEpoch.Add(time.Duration(i)*time.Millisecond/2), overlay.Received{From: peerA, Msg: gossipFrom(MessageID{byte(i + 1)}, 1, "x")})
	}
	c.Drain(nil)
	// B announces message 1 itself: no need to announce it back.
	c.Step(simEpoch.Add(5*time.Millisecond), overlay.Received{From: peerB, Msg: &IHave{Announcements: []Announcement{{ID: MessageID{1}, Round: 1}}}})
	deadline, _ := c.NextDeadline()
	c.Step(deadline, overlay.Tick{})
	ihaves := sentTo[*IHave](c.Drain(nil), peerB)
	if len(ihaves) != 1 || len(ihaves[0].Announcements) != 9 {
		t.Fatalf("IHAVEs %+v: want one message with 9 announcements", ihaves)
	}
	for _, a := range ihaves[0].Announcements {
		if a.ID == (MessageID{1}) {
			t.Errorf("announced %v back to the peer that announced it", a.ID)
		}
	}
	if _, ok := c.NextDeadline(); ok {
		t.Errorf("a timer is still pending after the flush")
	}
}

// The announcement batching interval doubles, up to MaxLazyBatchInterval,
// while each batch announces more than one message, stays put at a lower
// rate, and drops back at once at a GRAFT, an announcement of a message not
// received or a neighbour change, pulling in a batch already gathered.
func TestLazyBatchIntervalAdaptsToTheFlow(t *testing.T) {
	c := newTestCore(t, nil, peerA, peerB, peerC)
	c.Step(simEpoch, overlay.Received{From: peerC, Msg: &Prune{}})
	c.Drain(nil)
	now := simEpoch
	next := byte(0)
	// batch receives perBatch new payloads from A at now, ticks at the end
	// of the batching interval and returns the interval.
	batch := func(perBatch int) time.Duration {
		t.Helper()
		start := now
		for range perBatch {
			next++
			c.Step(now, overlay.Received{From: peerA, Msg: gossipFrom(MessageID{0xAB, next}, 1, "x")})
		}
		deadline, ok := c.NextDeadline()
		if !ok {
			t.Fatal("no deadline with announcements gathered")
		}
		now = deadline
		c.Step(now, overlay.Tick{})
		if ihaves := sentTo[*IHave](c.Drain(nil), peerC); len(ihaves) != 1 || len(ihaves[0].Announcements) != perBatch {
			t.Fatalf("IHAVEs to C = %+v, want one announcing %d messages", ihaves, perBatch)
		}
		return now.Sub(start)
	}
	ms := time.Millisecond
	// The neighbours just came up: the first batch does not grow it.
	for i, want := range []time.Duration{10 * ms, 10 * ms, 20 * ms, 40 * ms, 80 * ms, 80 * ms} {
		if got := batch(2); got != want {
			t.Fatalf("batch %d of a steady flow gathered for %v, want %v", i, got, want)
		}
	}
	// A GRAFT from C: the next batch leaves after the short interval.
	c.Step(now, overlay.Received{From: peerC, Msg: &Graft{}})
	c.Step(now, overlay.Received{From: peerC, Msg: &Prune{}}) // lazy again
	c.Drain(nil)
	if got := batch(2); got != 10*ms {
		t.Fatalf("after a GRAFT the batch gathered for %v, want 10ms", got)
	}
	if got := batch(2); got != 10*ms {
		t.Fatalf("the batch after the GRAFT's gathered for %v, want 10ms: it had trouble", got)
	}
	// One message per batch: the interval stays.
	for range 3 {
		if got := batch(1); got != 20*ms {
			t.Fatalf("a batch of one message gathered for %v, want 20ms: no growth at this rate", got)
		}
	}
	for range 3 {
		batch(2)
	}
	if c.lazyInterval != 80*ms {
		t.Fatalf("interval %v after a steady flow, want 80ms", c.lazyInterval)
	}
	// An announcement of an unknown message from C while a batch is
	// gathered: the batch leaves 10 ms later, not 80.
	next++
	c.Step(now, overlay.Received{From: peerA, Msg: gossipFrom(MessageID{0xAB, next}, 1, "x")})
	c.Step(now.Add(5*ms), overlay.Received{From: peerC, Msg: &IHave{Announcements: []Announcement{{ID: MessageID{0xCD, 1}, Round: 1}}}})
	if want := now.Add(15 * ms); !c.flushAt.Equal(want) || c.lazyInterval != 10*ms {
		t.Fatalf("after an unseen announcement: batch due %v, interval %v; want %v, 10ms", c.flushAt.Sub(now), c.lazyInterval, want.Sub(now))
	}
	// A neighbour leaving resets it too.
	c.lazyInterval = 80 * ms
	c.Step(now.Add(6*ms), NeighborDown{Peer: peerB.ID})
	if c.lazyInterval != 10*ms {
		t.Fatalf("interval %v after a neighbour left, want 10ms", c.lazyInterval)
	}
}
