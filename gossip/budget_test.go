package gossip

import (
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/plumtree"
	"github.com/p2p-go/p2p/wire"
)

// listSize is the entries of a member list of about 1 MiB, the most one
// Sync message carries.
const listSize = 7000

// genuine holds listSize members' keys and their signed records at
// incarnation 10, made once for every test that needs them.
var genuine = sync.OnceValues(func() ([]*peer.Key, []Entry) {
	keys := make([]*peer.Key, listSize)
	records := make([]Entry, listSize)
	for i := range records {
		seed := make([]byte, 32)
		binary.BigEndian.PutUint64(seed, uint64(i)+1)
		key, err := peer.KeyFromSeed(seed)
		if err != nil {
			panic(err)
		}
		keys[i] = key
		records[i] = signedEntry(key, fmt.Sprintf("10.1.%d.%d:1", i/250, i%250), 10, nil)
	}
	return keys, records
})

// syncFrom returns the input of a member list of entries that from sent.
func syncFrom(from peer.Info, entries []Entry) overlay.Received {
	return overlay.Received{From: from, Msg: &Sync{Full: true, Reply: true, Entries: entries}}
}

var (
	contact = peer.Info{ID: peer.ID{0xee}, Addr: "10.3.3.3:1"}
	insider = peer.Info{ID: peer.ID{0xaa}, Addr: "10.4.4.4:1"}
	honest  = peer.Info{ID: peer.ID{0xbb}, Addr: "10.5.5.5:1"}
)

// holding returns a keyed core that holds the first n genuine members,
// learnt from its contact's member list in its first moments.
func holding(t testing.TB, n int) *Core {
	t.Helper()
	c := newKeyedCore(t, 7)
	_, records := genuine()
	c.Step(time.Unix(1000, 0), syncFrom(contact, records[:n]))
	if got := c.members.len(); got != n {
		t.Fatalf("the core holds %d members, want %d", got, n)
	}
	return c
}

// garbageList returns an insider's list about the first n genuine members,
// with garbage signatures: a third at an older incarnation than the held
// one, a third at the held one, a third at a newer one.
func garbageList(n int) []Entry {
	_, records := genuine()
	list := make([]Entry, n)
	for i, e := range records[:n] {
		e.Incarnation = uint64(9 + i%3)
		e.Signature = make([]byte, 64)
		binary.BigEndian.PutUint32(e.Signature, uint32(i))
		list[i] = e
	}
	return list
}

// A joiner handed a full member list of listSize genuine records by its
// contact checks and adopts them all: checks that succeed never count
// against the message's cap.
func TestJoinerAdoptsAFullGenuineMemberList(t *testing.T) {
	c := holding(t, listSize)
	st := c.Stats()
	if st.SignaturesChecked != listSize || st.SignatureBudgetRefused != 0 || st.InvalidRecords != 0 || st.DuplicateRecords != 0 {
		t.Fatalf("%d signatures checked, %d refused unverified, %d invalid, %d duplicates; want %d, 0, 0, 0",
			st.SignaturesChecked, st.SignatureBudgetRefused, st.InvalidRecords, st.DuplicateRecords, listSize)
	}
}

// forgedBroadcast returns the input of a membership broadcast of e that
// relay relayed, under an origin and a message ID of its own (i).
func forgedBroadcast(t *testing.T, now time.Time, relay peer.Info, e Entry, i int) overlay.Received {
	t.Helper()
	body, err := wire.MarshalValue(membershipEvent{Entry: e})
	if err != nil {
		t.Fatal(err)
	}
	origin := peer.Info{ID: peer.ID{0xdd, byte(i), byte(i >> 8)}, Addr: fmt.Sprintf("10.10.%d.%d:1", i/250, i%250)}
	g := &plumtree.Gossip{ID: plumtree.MessageID{byte(i), byte(i >> 8), 0xdd}, Round: 2, Origin: origin,
		Payload: withTopic(TopicMembership, body), SentAt: now.UnixMilli()}
	return overlay.Received{From: relay, Msg: g}
}

// An insider sends a member list of listSize entries about members the node
// holds, all with garbage signatures (see garbageList). Before any
// signature check, the two thirds that could change nothing are refused as
// stale; the newer third costs the message's cap of failed checks, and the
// rest is refused unverified. Before the stale check and the cap, this list
// cost 7,000 checks (about half a second of CPU). Nothing carries over: the
// same genuine newer record is then checked and adopted from the very same
// insider's next message, and (on a second node under the same attack) from
// an honest peer's.
func TestInsiderListCostsAtMostTheCapAndBlindsNoOne(t *testing.T) {
	keys, records := genuine()
	renewed := signedEntry(keys[2], records[2].Peer.Addr, 11, nil)
	for _, next := range []peer.Info{insider, honest} {
		c := holding(t, listSize)
		now := time.Unix(1001, 0)
		before := c.Stats()
		c.Step(now, syncFrom(insider, garbageList(listSize)))
		st := c.Stats()
		checked := st.SignaturesChecked - before.SignaturesChecked
		t.Logf("an insider's list of %d garbage-signed entries about held members cost %d signature checks", listSize, checked)
		if checked != DefaultSignatureFailures || st.InvalidRecords-before.InvalidRecords != DefaultSignatureFailures {
			t.Fatalf("%d signatures checked, %d invalid, want %d", checked, st.InvalidRecords-before.InvalidRecords, DefaultSignatureFailures)
		}
		if stale := st.StaleRecords - before.StaleRecords; stale != listSize/3*2+1 {
			t.Fatalf("%d stale records, want %d", stale, listSize/3*2+1)
		}
		if refused := st.SignatureBudgetRefused; refused != listSize/3-DefaultSignatureFailures {
			t.Fatalf("%d refused unverified, want %d", refused, listSize/3-DefaultSignatureFailures)
		}
		for i, e := range records[:listSize] {
			if m, _ := c.members.get(e.Peer.ID); m.incarnation() != 10 || m.state != StateAlive {
				t.Fatalf("member %d changed: incarnation %d, state %d", i, m.incarnation(), m.state)
			}
		}

		before = c.Stats()
		c.Step(now, syncFrom(next, []Entry{renewed}))
		st = c.Stats()
		if m, _ := c.members.get(renewed.Peer.ID); m.incarnation() != 11 || st.SignaturesChecked != before.SignaturesChecked+1 ||
			st.SignatureBudgetRefused != before.SignatureBudgetRefused {
			t.Fatalf("next message from %v: the genuine newer record was not checked and adopted: incarnation %d, %d checks, %d refused unverified",
				next.ID, m.incarnation(), st.SignaturesChecked-before.SignaturesChecked, st.SignatureBudgetRefused-before.SignatureBudgetRefused)
		}
	}
}

// Plumtree relays a broadcast before anyone can check it, so an insider's
// forged membership broadcasts reach a node through honest neighbours. Each
// is a message of its own, which fails its check; the neighbour's next
// message, a broadcast or a member list with genuine news, is checked and
// adopted however many forged ones it relayed before.
func TestForgedBroadcastsRelayedByAnHonestNeighbourDoNotBlindTheNode(t *testing.T) {
	c := holding(t, 1000)
	keys, records := genuine()
	now := time.Unix(1001, 0)
	relay := peer.Info{ID: peer.ID{0xcc}, Addr: "10.9.9.9:1"}
	before := c.Stats()
	forged := 0
	for i, e := range garbageList(1000) {
		if e.Incarnation != 11 {
			continue
		}
		forged++
		c.Step(now, forgedBroadcast(t, now, relay, e, i))
	}
	st := c.Stats()
	if got := c.Plumtree().Stats().Delivered; got < uint64(forged) {
		t.Fatalf("%d broadcasts delivered, want %d", got, forged)
	}
	if checked := st.SignaturesChecked - before.SignaturesChecked; checked != uint64(forged) || st.SignatureBudgetRefused != 0 {
		t.Fatalf("%d checks, %d refused unverified, want %d (one per forged broadcast) and 0", checked, st.SignatureBudgetRefused, forged)
	}

	// The same neighbour's genuine news: a broadcast, then a member list.
	news := signedEntry(keys[3], records[3].Peer.Addr, 12, nil)
	c.Step(now, forgedBroadcast(t, now, relay, news, 5000))
	if m, _ := c.members.get(news.Peer.ID); m.incarnation() != 12 {
		t.Fatalf("the neighbour's genuine broadcast was not adopted: incarnation %d", m.incarnation())
	}
	news = signedEntry(keys[6], records[6].Peer.Addr, 12, nil)
	c.Step(now, syncFrom(relay, []Entry{news}))
	if m, _ := c.members.get(news.Peer.ID); m.incarnation() != 12 {
		t.Fatalf("the neighbour's genuine member list was not adopted: incarnation %d", m.incarnation())
	}
	if got := c.Stats().SignatureBudgetRefused; got != 0 {
		t.Fatalf("%d entries refused unverified, want 0", got)
	}
}

// A flood of forged messages, member lists and membership broadcasts from
// one insider or from a new identity each, costs at most the cap per
// message: the count of checks is exactly the cap per member list (each
// has more forged entries than the cap) and one per broadcast (one forged
// record each).
func TestForgedMessageFloodCostsAtMostTheCapPerMessage(t *testing.T) {
	c := holding(t, 1000)
	list := garbageList(1000)
	now := time.Unix(1001, 0)
	before := c.Stats()
	const lists, broadcasts = 200, 200
	for i := range lists {
		from := insider
		if i%2 == 1 {
			from = peer.Info{ID: peer.ID{0xaa, byte(i), byte(i >> 8)}, Addr: fmt.Sprintf("10.6.%d.%d:1", i/250, i%250)}
		}
		c.Step(now, syncFrom(from, list[:300]))
	}
	sent := 0
	for i, e := range list {
		if e.Incarnation == 11 && sent < broadcasts {
			c.Step(now, forgedBroadcast(t, now, insider, e, i))
			sent++
		}
	}
	st := c.Stats()
	checked := st.SignaturesChecked - before.SignaturesChecked
	t.Logf("%d forged member lists and %d forged broadcasts cost %d checks", lists, broadcasts, checked)
	if want := uint64(lists*DefaultSignatureFailures + broadcasts); checked != want {
		t.Fatalf("%d checks, want %d", checked, want)
	}
	if want := uint64(lists * (100 - DefaultSignatureFailures)); st.SignatureBudgetRefused != want {
		t.Fatalf("%d refused unverified, want %d", st.SignatureBudgetRefused, want)
	}
}

// A message past its cap refuses the rest of its entries that need a check,
// genuine ones included (a hostile list may put them last): a lower
// Config.SignatureFailures checks fewer, and an entry that needs no check
// (the record held already) is not refused.
func TestSignatureFailuresCapsOneMessage(t *testing.T) {
	key := testKey(t, 7, 0x11)
	c, err := New(Config{Self: peer.Info{ID: key.ID(), Addr: "10.0.0.7:1"}, Key: key, Seed: 7, SignatureFailures: 1})
	if err != nil {
		t.Fatal(err)
	}
	keys, records := genuine()
	now := time.Unix(1000, 0)
	c.Step(now, syncFrom(contact, records[:10]))
	forged := garbageList(10)[2] // at incarnation 11
	renewed := signedEntry(keys[4], records[4].Peer.Addr, 11, nil)
	before := c.Stats()
	c.Step(now, syncFrom(insider, []Entry{forged, records[0], forged, renewed}))
	st := c.Stats()
	if checked, refused := st.SignaturesChecked-before.SignaturesChecked, st.SignatureBudgetRefused-before.SignatureBudgetRefused; checked != 1 || refused != 2 {
		t.Fatalf("%d checks, %d refused unverified, want 1 and 2", checked, refused)
	}
	if m, _ := c.members.get(renewed.Peer.ID); m.incarnation() != 10 {
		t.Fatal("an entry past the message's cap was adopted")
	}
	c.Step(now, syncFrom(insider, []Entry{renewed}))
	if m, _ := c.members.get(renewed.Peer.ID); m.incarnation() != 11 {
		t.Fatal("the genuine record was not adopted from the next message")
	}
}

// A member list names each member once. An insider's own record at a
// thousand increasing incarnations, each genuine (it holds the key), would
// cost a check each: the first is checked, the rest refused unverified.
func TestMemberListNamingAMemberTwiceCostsOneCheck(t *testing.T) {
	c := newKeyedCore(t, 7)
	key := testKey(t, 0xaa, 0x22)
	list := make([]Entry, 1000)
	for i := range list {
		list[i] = signedEntry(key, "10.4.4.4:1", uint64(i)+1, nil)
	}
	from := peer.Info{ID: key.ID(), Addr: "10.4.4.4:1"}
	before := c.Stats()
	c.Step(time.Unix(1001, 0), syncFrom(from, list))
	st := c.Stats()
	if checked := st.SignaturesChecked - before.SignaturesChecked; checked != 1 || st.DuplicateRecords != 999 {
		t.Fatalf("%d checks, %d duplicates, want 1 and 999", checked, st.DuplicateRecords)
	}
	if m, ok := c.members.get(key.ID()); !ok || m.incarnation() != 1 {
		t.Fatal("the first record of the list was not adopted")
	}
}

// The entries that can change something at the held incarnation are still
// checked and merged as before: a suspect or dead claim about a live member
// (carrying its record's signature, which was checked when it arrived), its
// signed departure, and its record with the introductions the held copy
// lacks. Only what cannot win is refused as stale, without a check.
func TestStaleEntriesAreRefusedWithoutACheckAndTheOthersMerged(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newKeyedCore(t, 8)
	c.Step(now, Join{})
	member, w1, w2 := testKey(t, 0x31), testKey(t, 0x32), testKey(t, 0x33)
	held := signedEntry(member, "10.8.8.1:1", 5, nil)
	for _, e := range []Entry{held, signedEntry(w1, "10.8.8.2:1", 1, nil), signedEntry(w2, "10.8.8.3:1", 1, nil)} {
		if !c.learn(now, e, false, contact) {
			t.Fatal("a genuine record was not adopted")
		}
	}
	type result struct{ checked, stale, suspicions uint64 }
	step := func(e Entry) result {
		t.Helper()
		before := c.Stats()
		c.newMessage() // each entry a message of its own
		c.learn(now, e, false, insider)
		st := c.Stats()
		return result{st.SignaturesChecked - before.SignaturesChecked, st.StaleRecords - before.StaleRecords, st.Suspicions - before.Suspicions}
	}
	with := func(e Entry, change func(*Entry)) Entry { change(&e); return e }
	garbage := func(e *Entry) { e.Signature = make([]byte, 64) }

	for _, tc := range []struct {
		name string
		e    Entry
		want result
	}{
		{"older, genuine", signedEntry(member, "10.8.8.1:1", 4, nil), result{stale: 1}},
		{"older, garbage", with(held, func(e *Entry) { e.Incarnation = 4; garbage(e) }), result{stale: 1}},
		{"held, garbage", with(held, garbage), result{stale: 1}},
		{"held, again", held, result{stale: 1}},
		{"held, other tags", with(held, func(e *Entry) { e.Tags = map[string]string{"a": "b"} }), result{stale: 1}},
		{"newer, garbage", with(held, func(e *Entry) { e.Incarnation = 6; garbage(e) }), result{checked: 1}},
		{"suspect, held", with(held, func(e *Entry) { e.State = StateSuspect }), result{suspicions: 1}},
		{"dead, held", with(held, func(e *Entry) { e.State = StateDead }), result{}}, // suspected already
	} {
		if got := step(tc.e); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}

	// The record with its introductions (same signature): adopted, its two
	// introductions checked.
	introduced := held
	introduced.Witnesses = []Witness{
		{By: w1.ID(), Signature: w1.Sign(introductionBytes(held.Peer.ID, held.Peer.Addr))},
		{By: w2.ID(), Signature: w2.Sign(introductionBytes(held.Peer.ID, held.Peer.Addr))},
	}
	if got := step(introduced); got != (result{checked: 2}) {
		t.Errorf("record with introductions: %+v, want two checks", got)
	}
	if m, _ := c.members.get(held.Peer.ID); len(m.rec.entry.Witnesses) != Introductions {
		t.Fatal("the record with its introductions was not kept")
	}
	if got := step(introduced); got != (result{stale: 1}) {
		t.Errorf("record with introductions, again: %+v, want stale", got)
	}

	// Its departure, signed: adopted.
	left := with(held, func(e *Entry) { e.State = StateLeft; e.Witnesses = nil })
	left.Signature = member.Sign(recordBytes(left))
	if got := step(left); got != (result{checked: 1}) {
		t.Errorf("departure: %+v, want one check", got)
	}
	if m, _ := c.members.get(held.Peer.ID); m.state != StateLeft {
		t.Fatalf("the departure was not adopted: state %d", m.state)
	}
	if got := step(with(held, func(e *Entry) { e.State = StateDead })); got != (result{stale: 1}) {
		t.Errorf("dead claim about a departed member: %+v, want stale", got)
	}
}

// mergeState is what merging an entry can change in a core.
type mergeState struct {
	rec                        *record
	state                      uint8
	outputs, suspicions, holds int
	diedAt                     time.Time
	stats                      Stats
}

func mergeStateOf(c *Core, id peer.ID) mergeState {
	m, _ := c.members.get(id)
	st := c.stats
	st.SignaturesChecked, st.InvalidRecords = 0, 0 // costs, not state
	return mergeState{rec: m.rec, state: m.state, outputs: len(c.outputs), suspicions: len(c.suspicions), holds: len(c.holders),
		diedAt: c.diedAt[id], stats: st}
}

// The stale check refuses only what the merge rules would refuse anyway:
// for every held record (alive, dead or left, with or without
// introductions) and every entry about its member that would pass the
// signature check (a genuine signature, or the held one), at an older, the
// held or a newer incarnation, in every state, with or without other tags
// and introductions, first-hand or not, an entry that stale refuses changes
// nothing when merged. The cases are few enough to try them all.
func TestStaleEntriesWouldChangeNothing(t *testing.T) {
	subject, w1, w2 := testKey(t, 0x41), testKey(t, 0x42), testKey(t, 0x43)
	const addr = "10.8.8.1:1"
	introductions := []Witness{
		{By: w1.ID(), Signature: w1.Sign(introductionBytes(subject.ID(), addr))},
		{By: w2.ID(), Signature: w2.Sign(introductionBytes(subject.ID(), addr))},
	}
	witnessChoices := [][]Witness{nil, introductions, {introductions[0], {By: w2.ID(), Signature: make([]byte, 64)}}}
	now := time.Unix(1000, 0)
	cases, stale := 0, 0
	for _, heldState := range []uint8{StateAlive, StateDead, StateLeft} {
		for _, heldWitnesses := range witnessChoices[:2] {
			for inc := uint64(4); inc <= 6; inc++ {
				for _, state := range []uint8{StateAlive, StateDead, StateLeft, StateSuspect} {
					for _, tags := range []map[string]string{nil, {"a": "b"}} {
						for _, witnesses := range witnessChoices {
							for _, genuine := range []bool{false, true} {
								for _, firstHand := range []bool{false, true} {
									cases++
									c := newKeyedCore(t, 9)
									c.members.put(member{rec: internRecord(signedEntry(w1, "10.8.8.2:1", 1, nil)), state: StateAlive})
									c.members.put(member{rec: internRecord(signedEntry(w2, "10.8.8.3:1", 1, nil)), state: StateAlive})
									held := Entry{Peer: peer.Info{ID: subject.ID(), Addr: addr}, Incarnation: 5, State: signedState(heldState),
										Name: "n", PublicKey: subject.Public(), Witnesses: heldWitnesses}
									held.Signature = subject.Sign(recordBytes(held))
									c.members.put(member{rec: internRecord(held), state: heldState})
									e := held
									e.Incarnation, e.State, e.Tags, e.Witnesses = inc, state, tags, witnesses
									if genuine {
										e.Signature = subject.Sign(recordBytes(e))
									}
									m, _ := c.members.get(subject.ID())
									if !c.stale(m, e) || !c.verified(e) {
										continue
									}
									stale++
									what := fmt.Sprintf("state %d at %d (witnesses %d, tags %v, genuine %v, first-hand %v) over %d at 5 (witnesses %d)",
										state, inc, len(witnesses), tags, genuine, firstHand, heldState, len(heldWitnesses))
									before := mergeStateOf(c, subject.ID())
									if c.merge(now, e, nil, m, true, firstHand) {
										t.Fatalf("a stale entry was news: %s", what)
									}
									if after := mergeStateOf(c, subject.ID()); after != before {
										t.Fatalf("a stale entry changed the core: %s\n%+v\n%+v", what, before, after)
									}
								}
							}
						}
					}
				}
			}
		}
	}
	t.Logf("%d cases, %d stale entries that would pass the signature check: none changed anything", cases, stale)
}

// BenchmarkInsiderList measures what one insider's member list of listSize
// garbage-signed entries about held members (see garbageList) costs a node:
// every list, from the same insider at the same time, costs as much.
func BenchmarkInsiderList(b *testing.B) {
	c := holding(b, listSize)
	list := garbageList(listSize)
	now := time.Unix(1001, 0)
	before := c.Stats().SignaturesChecked
	for b.Loop() {
		c.Step(now, syncFrom(insider, list))
	}
	b.ReportMetric(float64(c.Stats().SignaturesChecked-before)/float64(b.N), "checks/list")
}
