package kademlia

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
)

func TestConfigErrorsNameTheField(t *testing.T) {
	key := keyN(t, 1)
	self := infoOf(key, 1)
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{}, "Self.ID"},
		{Config{Self: self, K: -1}, "K"},
		{Config{Self: self, K: 300}, "K"},
		{Config{Self: self, K: 4, Alpha: 5}, "Alpha"},
		{Config{Self: self, RPCTimeout: -time.Second}, "RPCTimeout"},
		{Config{Self: self, RPCTimeout: 2 * time.Second, LateReplyTimeout: time.Second}, "LateReplyTimeout"},
		{Config{Self: self, RecordTTL: time.Hour}, "RepublishInterval"},
		{Config{Self: self, MaxValueSize: 1 << 20}, "MaxValueSize"},
		{Config{Self: self, StoreRate: -1}, "StoreRate"},
		{Config{Self: self, Signer: keyN(t, 2)}, "Signer"},
		{Config{Self: peer.Info{ID: self.ID, Addr: strings.Repeat("a", 300)}}, "Self.Addr"},
	} {
		_, err := New(tc.cfg)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "Config."+tc.field) {
			t.Errorf("config %+v: error %v, want ErrConfig naming Config.%s", tc.cfg, err, tc.field)
		}
	}
	c, err := New(Config{Self: self, Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	got := c.Config()
	if got.K != DefaultK || got.Alpha != DefaultAlpha || got.RPCTimeout != DefaultRPCTimeout || got.LateReplyTimeout != DefaultLateReplyTimeout || got.MaxContactsPerReply != DefaultK || got.Seed == 0 {
		t.Fatalf("defaults not applied: %+v", got)
	}
}

// populated returns a core that knows the given peers.
func populated(t *testing.T, cfg Config, peers []peer.Info) *Core {
	t.Helper()
	c := newTestCore(t, 1, cfg)
	for _, p := range peers {
		c.Step(simEpoch, overlay.Received{From: p, Msg: &Ping{RPC: 1}})
	}
	c.Drain(nil)
	return c
}

func testPeers(t *testing.T, first, n int) []peer.Info {
	var out []peer.Info
	for i := range n {
		out = append(out, infoOf(keyN(t, first+i), first+i))
	}
	return out
}

func TestSection2_3_UnresponsiveNodesAreSkippedWithoutStallingTheLookup(t *testing.T) {
	peers := testPeers(t, 1000, 8)
	c := populated(t, Config{K: 4, Alpha: 3, StaleAfter: 2}, peers)
	dead := map[peer.ID]bool{}
	for _, p := range peers[:4] {
		dead[p.ID] = true
	}
	run := func(reqID uint64) LookupResult {
		now := simEpoch
		c.Step(now, Lookup{ReqID: reqID, Target: peer.ID{0x42}})
		for range 50 {
			outs := c.Drain(nil)
			if res, ok := firstOf[LookupResult](outs); ok {
				return res
			}
			reqs, to := sends[*FindNode](outs)
			for i, req := range reqs {
				if !dead[to[i].ID] {
					// Live peers know the other live peers.
					c.Step(now, overlay.Received{From: to[i], Msg: &FindNodeReply{RPC: req.RPC, Contacts: peers[4:]}})
				}
			}
			if len(reqs) == 0 {
				now = now.Add(c.cfg.RPCTimeout)
				c.Step(now, overlay.Tick{})
			}
		}
		t.Fatal("lookup never ended")
		return LookupResult{}
	}
	res := run(1)
	if res.Err != nil || len(res.Closest) != 4 {
		t.Fatalf("lookup: %d closest, %v", len(res.Closest), res.Err)
	}
	for _, info := range res.Closest {
		if dead[info.ID] {
			t.Fatalf("dead node %s in the result", info.ID.Short())
		}
	}
	// A second failure makes the dead contacts stale: the next lookup
	// does not even ask them.
	run(2)
	asked := 0
	c.Step(simEpoch, Lookup{ReqID: 3, Target: peer.ID{0x42}})
	_, to := sends[*FindNode](c.Drain(nil))
	for _, p := range to {
		if dead[p.ID] {
			asked++
		}
	}
	if asked != 0 {
		t.Fatalf("%d stale contacts asked first", asked)
	}
}

// A node that does not answer within RPCTimeout is "removed from
// consideration until and unless it responds" (section 2.3): the lookup
// asks the next candidate in its place, but a late reply brings it back, and
// the lookup waits for it (up to LateReplyTimeout) while it would be among
// the K closest, so that a node slowed by load is not left out of the
// result.
func TestSection2_3_ALateReplyBringsTheNodeBackIntoConsideration(t *testing.T) {
	peers := testPeers(t, 1000, 8)
	c := populated(t, Config{K: 4, Alpha: 3}, peers)
	target := peer.ID{0x42}
	byDistance := slices.Clone(peers)
	slices.SortFunc(byDistance, func(a, b peer.Info) int { return compareDistance(target, a.ID, b.ID) })
	slow := byDistance[0]
	var slowReq *FindNode
	// answer replies at now to every request but the slow node's, until
	// the lookup sends no more, and returns its result if it ended.
	answer := func(now time.Time, outs []any) (LookupResult, bool) {
		for range 50 {
			if res, ok := firstOf[LookupResult](outs); ok {
				return res, true
			}
			reqs, to := sends[*FindNode](outs)
			if len(reqs) == 0 {
				return LookupResult{}, false
			}
			for i, req := range reqs {
				if to[i].ID == slow.ID {
					slowReq = req
					continue
				}
				c.Step(now, overlay.Received{From: to[i], Msg: &FindNodeReply{RPC: req.RPC, Contacts: byDistance[:4]}})
			}
			outs = c.Drain(nil)
		}
		t.Fatal("lookup never stopped sending")
		return LookupResult{}, false
	}
	c.Step(simEpoch, Lookup{ReqID: 1, Target: target})
	if res, ok := answer(simEpoch, c.Drain(nil)); ok {
		t.Fatalf("lookup ended without its closest candidate's answer: %+v", res)
	}
	if slowReq == nil {
		t.Fatal("the closest node was not asked")
	}
	// After RPCTimeout the lookup asks the fifth closest in its place,
	// and still waits.
	late := simEpoch.Add(c.cfg.RPCTimeout)
	c.Step(late, overlay.Tick{})
	outs := c.Drain(nil)
	if _, to := sends[*FindNode](outs); len(to) != 1 || to[0].ID != byDistance[4].ID {
		t.Fatalf("after RPCTimeout the lookup asked %v, want the fifth closest %s", to, byDistance[4].ID.Short())
	}
	if res, ok := answer(late, outs); ok {
		t.Fatalf("lookup ended while a late candidate among the K closest may still answer: %+v", res)
	}
	if st := c.Stats(); st.RPCsLate != 1 || st.RPCTimeouts != 0 {
		t.Fatalf("stats %+v, want one late request and no timeout", st)
	}
	// The late reply comes: the lookup ends with the true K closest.
	c.Step(late.Add(c.cfg.RPCTimeout), overlay.Received{From: slow, Msg: &FindNodeReply{RPC: slowReq.RPC, Contacts: byDistance[:4]}})
	res := findOutput[LookupResult](t, c.Drain(nil))
	if ids(res.Closest) != ids(byDistance[:4]) {
		t.Fatalf("lookup returned %v, want the 4 closest %v", res.Closest, byDistance[:4])
	}
	if st := c.Stats(); st.LateReplies != 1 {
		t.Fatalf("stats %+v, want one late reply", st)
	}
	if ct := c.table.get(slow.ID); ct == nil || ct.failures != 0 {
		t.Fatalf("contact of the late node: %+v, want it kept without failures", ct)
	}
}

// A link that goes down while a request waits for its reply (the peer's
// connection manager closed the idle connection the request was crossing:
// the peer still reads it and answers on a new connection) does not cost
// the lookup that node: the request is sent once more, and the answer
// counts. A link that goes down again fails the request.
func TestLinkDownSendsAPendingRequestOnceMore(t *testing.T) {
	peers := testPeers(t, 1000, 8)
	c := populated(t, Config{K: 4, Alpha: 3}, peers)
	c.Step(simEpoch, Lookup{ReqID: 1, Target: peer.ID{0x42}})
	reqs, to := sends[*FindNode](c.Drain(nil))
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want Alpha = 3", len(reqs))
	}
	l := c.lookups[c.nextHandle]
	for i := range 2 {
		c.Step(simEpoch, overlay.LinkDown{Peer: to[i].ID, Addr: to[i].Addr, Err: io.EOF})
		again, againTo := sends[*FindNode](c.Drain(nil))
		if len(again) != 1 || againTo[0].ID != to[i].ID || again[0].RPC != reqs[i].RPC {
			t.Fatalf("after the link to %s went down: sent %v to %v, want the same request again", to[i].ID.Short(), again, againTo)
		}
	}
	// The first answers on its new link: it counts.
	c.Step(simEpoch, overlay.Received{From: to[0], Msg: &FindNodeReply{RPC: reqs[0].RPC}})
	c.Drain(nil)
	if st := l.find(to[0].ID).state; st != candidateAnswered {
		t.Fatalf("candidate state %d after its answer on a new link, want answered", st)
	}
	// The second's link goes down again: it fails.
	c.Step(simEpoch, overlay.LinkDown{Peer: to[1].ID, Addr: to[1].Addr, Err: io.EOF})
	c.Drain(nil)
	if st := l.find(to[1].ID).state; st != candidateFailed {
		t.Fatalf("candidate state %d after its link went down twice, want failed", st)
	}
	if st := c.Stats(); st.RPCsResent != 2 {
		t.Fatalf("stats %+v, want 2 requests resent", st)
	}
}

func TestSection2_2_FullBucketPingsItsLeastRecentlySeenContactBeforeEviction(t *testing.T) {
	// With K = 1 every bucket holds one contact: two peers in the same
	// bucket compete for it.
	self := keyN(t, 1).ID()
	var a, b peer.Info
	for i := 2000; b.ID.IsZero(); i++ {
		p := infoOf(keyN(t, i), i)
		if CommonPrefixLen(self, p.ID) != 0 {
			continue
		}
		if a.ID.IsZero() {
			a = p
		} else {
			b = p
		}
	}
	c := populated(t, Config{K: 1, Alpha: 1, ProbeAfter: time.Minute}, []peer.Info{a})
	later := simEpoch.Add(2 * time.Minute)
	c.Step(later, overlay.Received{From: b, Msg: &Ping{RPC: 5}})
	pings, to := sends[*Ping](c.Drain(nil))
	if len(pings) != 1 || to[0].ID != a.ID {
		t.Fatalf("newcomer to a full bucket: PINGs %v, want one to the old contact", to)
	}
	if ids(c.Contacts()) != ids([]peer.Info{a}) {
		t.Fatal("old contact evicted before its PING was answered")
	}
	// a answers: it stays, b waits.
	c.Step(later, overlay.Received{From: a, Msg: &Pong{RPC: pings[0].RPC}})
	if ids(c.Contacts()) != ids([]peer.Info{a}) {
		t.Fatal("live old contact replaced")
	}
	// Much later b speaks again; this time a does not answer the PING.
	later = later.Add(5 * time.Minute)
	c.Step(later, overlay.Received{From: b, Msg: &Ping{RPC: 6}})
	pings, _ = sends[*Ping](c.Drain(nil))
	if len(pings) != 1 {
		t.Fatalf("%d PINGs", len(pings))
	}
	c.Step(later.Add(c.cfg.LateReplyTimeout), overlay.Tick{})
	if ids(c.Contacts()) != ids([]peer.Info{b}) {
		t.Fatalf("contacts %v after the old contact failed its PING, want the newcomer", c.Contacts())
	}
}

func ids(infos []peer.Info) string {
	var sb strings.Builder
	for _, i := range infos {
		sb.WriteString(i.ID.Short())
	}
	return sb.String()
}

func TestBootstrapWithNoReachableContactFails(t *testing.T) {
	c := newTestCore(t, 1, Config{})
	c.Step(simEpoch, Bootstrap{ReqID: 1, Contacts: []string{"nowhere:1", "nowhere:2"}})
	c.Drain(nil)
	c.Step(simEpoch, overlay.LinkDown{Addr: "nowhere:1", Err: errors.New("refused")})
	if _, ok := firstOf[BootstrapResult](c.Drain(nil)); ok {
		t.Fatal("bootstrap ended before every contact answered or failed")
	}
	// The other contact is late after RPCTimeout, failed after
	// LateReplyTimeout.
	c.Step(simEpoch.Add(c.cfg.RPCTimeout), overlay.Tick{})
	if _, ok := firstOf[BootstrapResult](c.Drain(nil)); ok {
		t.Fatal("bootstrap ended before its late contact's LateReplyTimeout")
	}
	c.Step(simEpoch.Add(c.cfg.LateReplyTimeout), overlay.Tick{})
	res := findOutput[BootstrapResult](t, c.Drain(nil))
	if !errors.Is(res.Err, ErrNoContacts) {
		t.Fatalf("bootstrap: %v, want ErrNoContacts", res.Err)
	}
	c.Step(simEpoch.Add(time.Second), Bootstrap{ReqID: 2})
	if res := findOutput[BootstrapResult](t, c.Drain(nil)); !errors.Is(res.Err, ErrNoContacts) {
		t.Fatalf("bootstrap without contacts: %v", res.Err)
	}
}

func TestMalformedRepliesFailTheRequest(t *testing.T) {
	peers := testPeers(t, 3000, 1)
	c := populated(t, Config{K: 2, Alpha: 1}, peers)
	c.Step(simEpoch, Lookup{ReqID: 1, Target: peer.ID{7}})
	reqs, _ := sends[*FindNode](c.Drain(nil))
	tooMany := testPeers(t, 3100, 3)
	c.Step(simEpoch, overlay.Received{From: peers[0], Msg: &FindNodeReply{RPC: reqs[0].RPC, Contacts: tooMany}})
	res := findOutput[LookupResult](t, c.Drain(nil))
	if !errors.Is(res.Err, ErrNoContacts) || c.Stats().Malformed != 1 {
		t.Fatalf("reply with too many contacts: %+v, stats %+v", res, c.Stats())
	}
	// A reply from a peer other than the one asked is ignored.
	c.Step(simEpoch, Lookup{ReqID: 2, Target: peer.ID{7}})
	reqs, _ = sends[*FindNode](c.Drain(nil))
	impostor := infoOf(keyN(t, 3200), 3200)
	c.Step(simEpoch, overlay.Received{From: impostor, Msg: &FindNodeReply{RPC: reqs[0].RPC}})
	if _, ok := firstOf[LookupResult](c.Drain(nil)); ok {
		t.Fatal("a reply from the wrong peer was accepted")
	}
}

func TestBucketRefreshLooksUpARandomIDInTheBucket(t *testing.T) {
	peers := testPeers(t, 4000, 10)
	c := populated(t, Config{RefreshInterval: 10 * time.Minute}, peers)
	c.Step(simEpoch.Add(9*time.Minute), overlay.Tick{})
	if reqs, _ := sends[*FindNode](c.Drain(nil)); len(reqs) != 0 {
		t.Fatalf("%d refresh requests before the interval", len(reqs))
	}
	c.Step(simEpoch.Add(11*time.Minute), overlay.Tick{})
	reqs, _ := sends[*FindNode](c.Drain(nil))
	buckets := map[int]bool{}
	for _, r := range reqs {
		buckets[CommonPrefixLen(c.cfg.Self.ID, r.Target)] = true
	}
	for i := range c.table.deepest() + 1 {
		if !buckets[i] {
			t.Fatalf("bucket %d not refreshed (refreshed %v)", i, buckets)
		}
	}
}

func TestBroadcastRetriesAnotherContactOfTheBucketWhenTheLinkFails(t *testing.T) {
	self := keyN(t, 1).ID()
	var far []peer.Info // bucket 0
	for i := 5000; len(far) < 3; i++ {
		if p := infoOf(keyN(t, i), i); CommonPrefixLen(self, p.ID) == 0 {
			far = append(far, p)
		}
	}
	c := populated(t, Config{}, far)
	c.Step(simEpoch, Broadcast{Payload: []byte("x")})
	msgs, to := sends[*BroadcastMessage](c.Drain(nil))
	if len(msgs) != 1 || msgs[0].Depth != 1 {
		t.Fatalf("broadcast sent %d messages (depth %v), want one to bucket 0", len(msgs), msgs)
	}
	c.Step(simEpoch.Add(time.Second), overlay.LinkDown{Peer: to[0].ID, Err: errors.New("gone")})
	msgs2, to2 := sends[*BroadcastMessage](c.Drain(nil))
	if len(msgs2) != 1 || to2[0].ID == to[0].ID || CommonPrefixLen(self, to2[0].ID) != 0 || msgs2[0].ID != msgs[0].ID {
		t.Fatalf("after LinkDown: resent to %v, want another contact of bucket 0", to2)
	}
	// A received duplicate is dropped.
	c.Step(simEpoch, overlay.Received{From: far[2], Msg: &BroadcastMessage{ID: msgs[0].ID, Origin: self, Depth: 1, Payload: []byte("x")}})
	if len(c.Drain(nil)) != 0 || c.Stats().BroadcastDuplicates != 1 {
		t.Fatalf("duplicate not dropped: %+v", c.Stats())
	}
}

func TestDirectMessageIsDelivered(t *testing.T) {
	peers := testPeers(t, 6000, 1)
	c := populated(t, Config{}, peers)
	c.Step(simEpoch, Direct{To: peer.Info{ID: peers[0].ID}, Payload: []byte("hi")})
	_, to := sends[*DirectMessage](c.Drain(nil))
	if len(to) != 1 || to[0] != peers[0] {
		t.Fatalf("direct sent to %v, want %v with its address from the table", to, peers[0])
	}
	c.Step(simEpoch, overlay.Received{From: peers[0], Msg: &DirectMessage{Payload: []byte("back")}})
	d := findOutput[Deliver](t, c.Drain(nil))
	if d.Broadcast || string(d.Payload) != "back" || d.Origin != peers[0].ID {
		t.Fatalf("deliver %+v", d)
	}
}

func TestRepliesCannotRedirectKnownContacts(t *testing.T) {
	peers := testPeers(t, 7000, 2)
	a, b := peers[0], peers[1]
	c := populated(t, Config{K: 4, Alpha: 1}, []peer.Info{b})
	c.Step(simEpoch, overlay.Received{From: a, Msg: &Ping{RPC: 2}}) // a is known at its address
	c.Drain(nil)
	// Make a unknown to the lookup's seeds: look up from b only by
	// targeting b's ID, and have b claim a lives elsewhere.
	c.Step(simEpoch, Lookup{ReqID: 1, Target: b.ID})
	reqs, to := sends[*FindNode](c.Drain(nil))
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	poisoned := peer.Info{ID: a.ID, Addr: "attacker:666"}
	other := to[0]
	if other.ID == a.ID {
		t.Skip("lookup asked a first; nothing to redirect")
	}
	c.Step(simEpoch, overlay.Received{From: other, Msg: &FindNodeReply{RPC: reqs[0].RPC, Contacts: []peer.Info{poisoned}}})
	_, to = sends[*FindNode](c.Drain(nil))
	for _, p := range to {
		if p.ID == a.ID && p.Addr != a.Addr {
			t.Fatalf("known contact %s dialled at the address a third party claimed: %s", a.ID.Short(), p.Addr)
		}
	}
	// A failure at a claimed address does not count against the contact.
	c.Step(simEpoch, overlay.LinkDown{Peer: a.ID, Addr: "attacker:666", Err: errors.New("refused")})
	if ct := c.table.get(a.ID); ct == nil || ct.failures != 0 {
		t.Fatalf("contact %s penalised for another address", a.ID.Short())
	}
}
