package gossip

import (
	"crypto/sha256"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/p2p-go/p2p/hyparview"
	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/plumtree"
	"github.com/p2p-go/p2p/wire"
)

// The cast of the tests below, among the genuine members (see budget_test.go):
// witnesses A and B, who introduce the member M; G, in whose name the
// insider forges an introduction; and the insider itself, a member, who
// signs one of its own over another address.
const (
	witnessA, witnessB, framedG, insiderI, memberM = 0, 1, 2, 3, 4
	heldByAll                                      = 4 // A, B, G and the insider
)

// joinedAt is when the cores of these tests joined; pastGraceAt is past
// their DefaultJoinGrace.
var (
	joinedAt    = time.Unix(1000, 0)
	pastGraceAt = joinedAt.Add(DefaultJoinGrace + time.Second)
)

// joinedCore returns a keyed core (seed) that learnt the first n genuine
// members from its contact in its join grace, then joined at joinedAt.
func joinedCore(t *testing.T, seed uint64, n int) *Core {
	t.Helper()
	c := newKeyedCore(t, seed)
	_, records := genuine()
	c.Step(joinedAt, syncFrom(contact, records[:n]))
	c.route(joinedAt, hyparview.Joined{})
	c.run(joinedAt)
	c.Drain(nil)
	if got := c.members.len(); got != n {
		t.Fatalf("the core holds %d members, want %d", got, n)
	}
	return c
}

// introduction returns witness's introduction of e's member at e's address.
func introduction(witness int, e Entry) Witness {
	keys, _ := genuine()
	return Witness{By: keys[witness].ID(), Signature: keys[witness].Sign(introductionBytes(e.Peer.ID, e.Peer.Addr))}
}

// forgedIntroductions returns two introductions of e that fail their
// checks: one in G's name (a signature G never made), one that the insider
// signed for another address.
func forgedIntroductions(e Entry) (inGsName, insiders Witness) {
	_, records := genuine()
	inGsName = introduction(framedG, e)
	inGsName.Signature = slices.Clone(inGsName.Signature)
	inGsName.Signature[0] ^= 0xff
	elsewhere := e
	elsewhere.Peer.Addr = records[insiderI].Peer.Addr
	insiders = introduction(insiderI, elsewhere)
	return inGsName, insiders
}

// memberListOf returns the member list c sends to the node to that asks
// for it.
func memberListOf(t *testing.T, c *Core, now time.Time, to peer.Info) []Entry {
	t.Helper()
	c.Step(now, overlay.Received{From: to, Msg: &Sync{}})
	for _, out := range c.Drain(nil) {
		if s, ok := out.(overlay.Send); ok && s.To.ID == to.ID {
			if msg, ok := s.Msg.(*Sync); ok && msg.Full {
				return msg.Entries
			}
		}
	}
	t.Fatal("no member list sent")
	return nil
}

// heldWitnesses returns the introductions of id's record as c holds it.
func heldWitnesses(t *testing.T, c *Core, id peer.ID) []Witness {
	t.Helper()
	m, ok := c.members.get(id)
	if !ok {
		t.Fatalf("member %v not held", id.Short())
	}
	return m.rec.entry.Witnesses
}

// wantWitnesses fails unless ws are introductions by exactly the members
// want, in that order.
func wantWitnesses(t *testing.T, who string, ws []Witness, want ...int) {
	t.Helper()
	keys, _ := genuine()
	var got, wanted []peer.ID
	for _, w := range ws {
		got = append(got, w.By)
	}
	for _, i := range want {
		wanted = append(wanted, keys[i].ID())
	}
	if !slices.Equal(got, wanted) {
		t.Fatalf("%s: introductions by %v, want those by %v", who, got, wanted)
	}
}

// costs is what one step cost a node in signature checks.
type costs struct {
	checked, invalidRecords, invalidIntroductions, budgetRefused uint64
}

func costOf(before, after Stats) costs {
	return costs{
		checked:              after.SignaturesChecked - before.SignaturesChecked,
		invalidRecords:       after.InvalidRecords - before.InvalidRecords,
		invalidIntroductions: after.InvalidIntroductions - before.InvalidIntroductions,
		budgetRefused:        after.SignatureBudgetRefused - before.SignatureBudgetRefused,
	}
}

// An insider adds forged introductions (see forgedIntroductions) around
// the two genuine ones of a member's record that a node past its join grace
// does not hold yet, and hands it over in a member list or in a membership
// broadcast. The node adopts the member on the two genuine introductions
// and keeps only those: it verified them, and dropped the forged one it
// checked (the other it never checked). A third node that does not hold the
// member then adopts it from the honest node's member list at no failed
// check (before, the honest list carried the forged introductions, each
// costing the third node a failed check, two of them its whole cap), and
// the next member list costs it no check at all.
func TestForgedIntroductionsOfANewMemberAreNeitherKeptNorRelayed(t *testing.T) {
	_, records := genuine()
	m := records[memberM]
	inGsName, insiders := forgedIntroductions(m)
	m.Witnesses = []Witness{inGsName, introduction(witnessA, m), introduction(witnessB, m), insiders}
	insiderInfo := records[insiderI].Peer
	for _, via := range []string{"member list", "membership broadcast"} {
		t.Run(via, func(t *testing.T) {
			honestNode, third := joinedCore(t, 21, heldByAll), joinedCore(t, 22, heldByAll)
			before := honestNode.Stats()
			if via == "member list" {
				honestNode.Step(pastGraceAt, syncFrom(insiderInfo, []Entry{m}))
			} else {
				honestNode.Step(pastGraceAt, forgedBroadcast(t, pastGraceAt, insiderInfo, m, 1))
			}
			cost := costOf(before, honestNode.Stats())
			if want := (costs{checked: 4, invalidIntroductions: 1}); cost != want {
				t.Fatalf("the insider's %s cost the honest node %+v, want %+v (the record, the forged introduction ahead of the genuine ones, and those two)",
					via, cost, want)
			}
			wantWitnesses(t, "the honest node holds", heldWitnesses(t, honestNode, m.Peer.ID), witnessA, witnessB)

			list := memberListOf(t, honestNode, pastGraceAt, third.cfg.Self)
			for _, e := range list {
				if e.Peer.ID == m.Peer.ID {
					wantWitnesses(t, "the honest node's member list carries", e.Witnesses, witnessA, witnessB)
				}
			}
			before = third.Stats()
			third.Step(pastGraceAt, syncFrom(honestNode.cfg.Self, list))
			if cost, want := costOf(before, third.Stats()), (costs{checked: 3}); cost != want {
				t.Fatalf("the honest node's member list cost the third node %+v, want %+v (the record and its two introductions)", cost, want)
			}
			wantWitnesses(t, "the third node holds", heldWitnesses(t, third, m.Peer.ID), witnessA, witnessB)

			before = third.Stats()
			third.Step(pastGraceAt, syncFrom(honestNode.cfg.Self, memberListOf(t, honestNode, pastGraceAt, third.cfg.Self)))
			if cost := costOf(before, third.Stats()); cost != (costs{}) {
				t.Fatalf("the same member list again cost the third node %+v, want nothing", cost)
			}
		})
	}
}

// A joiner believes what it hears in its join grace, but keeps only the
// introductions it verified all the same. The insider, its contact, puts
// the member first in its list, ahead of the witnesses' own records: the
// joiner adopts the member without introductions, then, once the rest of
// the list is in, checks them and keeps the genuine ones. A node past its
// grace that does not hold the member adopts it from the joiner's list at
// no failed check.
func TestJoinerKeepsOnlyTheIntroductionsItVerified(t *testing.T) {
	_, records := genuine()
	m := records[memberM]
	inGsName, insiders := forgedIntroductions(m)
	m.Witnesses = []Witness{introduction(witnessA, m), inGsName, introduction(witnessB, m), insiders}
	insiderInfo := records[insiderI].Peer

	joiner := newKeyedCore(t, 23)
	joiner.Step(joinedAt, syncFrom(insiderInfo, append([]Entry{m}, records[:heldByAll]...)))
	if got := joiner.members.len(); got != heldByAll+1 {
		t.Fatalf("the joiner holds %d members, want %d", got, heldByAll+1)
	}
	if got := joiner.Stats().InvalidIntroductions; got != 1 {
		t.Fatalf("the joiner counted %d forged introductions, want 1 (the one between the genuine ones)", got)
	}
	wantWitnesses(t, "the joiner holds", heldWitnesses(t, joiner, m.Peer.ID), witnessA, witnessB)

	third := joinedCore(t, 24, heldByAll)
	before := third.Stats()
	third.Step(pastGraceAt, syncFrom(joiner.cfg.Self, memberListOf(t, joiner, joinedAt, third.cfg.Self)))
	if cost, want := costOf(before, third.Stats()), (costs{checked: 3}); cost != want {
		t.Fatalf("the joiner's member list cost the third node %+v, want %+v (the record and its two introductions)", cost, want)
	}
	wantWitnesses(t, "the third node holds", heldWitnesses(t, third, m.Peer.ID), witnessA, witnessB)
}

// A newer record of a member a node holds needs no introduction to be
// adopted, and the insider puts a forged one ahead of the genuine ones: the
// node checks the forged one and drops it, and keeps the genuine ones
// without checking them again (it holds them, verified, for that address).
// A node holding the older record then adopts the newer one from the
// honest node's member list at one check, the record's own.
func TestNewerRecordOfAHeldMemberKeepsOnlyVerifiedIntroductions(t *testing.T) {
	keys, records := genuine()
	older := records[memberM]
	older.Witnesses = []Witness{introduction(witnessA, older), introduction(witnessB, older)}
	newer := signedEntry(keys[memberM], older.Peer.Addr, older.Incarnation+1, nil)
	inGsName, _ := forgedIntroductions(newer)
	newer.Witnesses = []Witness{inGsName, older.Witnesses[0], older.Witnesses[1]}
	insiderInfo := records[insiderI].Peer
	honestNode, third := joinedCore(t, 25, heldByAll), joinedCore(t, 26, heldByAll)
	for _, c := range []*Core{honestNode, third} {
		c.Step(pastGraceAt, syncFrom(insiderInfo, []Entry{older}))
		wantWitnesses(t, "a node holds", heldWitnesses(t, c, older.Peer.ID), witnessA, witnessB)
	}

	before := honestNode.Stats()
	honestNode.Step(pastGraceAt, syncFrom(insiderInfo, []Entry{newer}))
	if cost, want := costOf(before, honestNode.Stats()), (costs{checked: 2, invalidIntroductions: 1}); cost != want {
		t.Fatalf("the newer record cost the honest node %+v, want %+v (the record and the forged introduction)", cost, want)
	}
	if m, _ := honestNode.members.get(newer.Peer.ID); m.incarnation() != newer.Incarnation {
		t.Fatalf("the newer record was not adopted: incarnation %d", m.incarnation())
	}
	wantWitnesses(t, "the honest node holds", heldWitnesses(t, honestNode, newer.Peer.ID), witnessA, witnessB)

	before = third.Stats()
	third.Step(pastGraceAt, syncFrom(honestNode.cfg.Self, memberListOf(t, honestNode, pastGraceAt, third.cfg.Self)))
	if cost, want := costOf(before, third.Stats()), (costs{checked: 1}); cost != want {
		t.Fatalf("the honest node's member list cost the third node %+v, want %+v (the newer record)", cost, want)
	}
	if m, _ := third.members.get(newer.Peer.ID); m.incarnation() != newer.Incarnation {
		t.Fatalf("the third node did not adopt the newer record: incarnation %d", m.incarnation())
	}
	wantWitnesses(t, "the third node holds", heldWitnesses(t, third, newer.Peer.ID), witnessA, witnessB)
}

// A node that holds a member without introductions (from a link, or from
// its join grace) keeps the member's record with them once it arrives,
// its own introduction of the member included: it checks that one with
// its own key. The witness's record lacking, the other is dropped, at no
// check; it is kept, checked, once the witness's record is held: here from
// the witness's own member list, which names the member ahead of it.
func TestHeldMemberGainsItsVerifiedIntroductionsTheNodesOwnIncluded(t *testing.T) {
	keys, records := genuine()
	c := joinedCore(t, 27, memberM+1)
	held := records[memberM]
	m := held
	own := Witness{By: c.cfg.Self.ID, Signature: c.cfg.Key.Sign(introductionBytes(m.Peer.ID, m.Peer.Addr))}
	unheld := signedEntry(keys[memberM+1], records[memberM+1].Peer.Addr, 10, nil)
	m.Witnesses = []Witness{{By: unheld.Peer.ID, Signature: keys[memberM+1].Sign(introductionBytes(m.Peer.ID, m.Peer.Addr))}, own}
	before := c.Stats()
	c.Step(pastGraceAt, syncFrom(records[insiderI].Peer, []Entry{m}))
	if cost, want := costOf(before, c.Stats()), (costs{checked: 1}); cost != want {
		t.Fatalf("the record with introductions cost %+v, want %+v (the node's own introduction)", cost, want)
	}
	if ws := heldWitnesses(t, c, m.Peer.ID); len(ws) != 1 || ws[0].By != c.cfg.Self.ID {
		t.Fatalf("the node holds %d introductions, want its own only", len(ws))
	}

	before = c.Stats()
	c.Step(pastGraceAt, syncFrom(unheld.Peer, []Entry{m, unheld}))
	if cost, want := costOf(before, c.Stats()), (costs{checked: 2}); cost != want {
		t.Fatalf("the witness's own list cost %+v, want %+v (its record, then its introduction)", cost, want)
	}
	if ws := heldWitnesses(t, c, m.Peer.ID); len(ws) != 2 || ws[0].By != unheld.Peer.ID || ws[1].By != c.cfg.Self.ID {
		t.Fatalf("the node holds %d introductions, want the witness's and its own", len(ws))
	}
}

// Checks that succeed do not count against a message's cap, so an insider
// could make a node spend them in vain, message after message, on
// introductions that cannot replace those it holds: a member the node holds
// with one introduction, sent again with a genuine introduction by the
// insider itself and one by a member the node does not hold, would cost a
// check each time, and keep nothing (one verified introduction does not
// beat the one held). No check is made unless enough introductions could be
// verified to replace the held ones.
func TestIntroductionsThatCannotReplaceTheHeldOnesCostNoCheck(t *testing.T) {
	_, records := genuine()
	c := joinedCore(t, 28, heldByAll)
	m := records[memberM]
	m.Witnesses = []Witness{introduction(witnessA, m)}
	c.Step(pastGraceAt, syncFrom(m.Peer, []Entry{m})) // from the member itself: adopted on its link
	wantWitnesses(t, "the node holds", heldWitnesses(t, c, m.Peer.ID), witnessA)

	const unheldU = 10
	m.Witnesses = []Witness{introduction(insiderI, m), introduction(unheldU, m)}
	before := c.Stats()
	for range 100 {
		c.Step(pastGraceAt, syncFrom(records[insiderI].Peer, []Entry{m}))
	}
	if cost := costOf(before, c.Stats()); cost != (costs{}) {
		t.Fatalf("100 lists with introductions that cannot replace the held one cost %+v, want nothing", cost)
	}
	wantWitnesses(t, "the node holds", heldWitnesses(t, c, m.Peer.ID), witnessA)

	// With the held one, the insider's introduction makes two: checked
	// once and kept, and the record is stale from then on.
	m.Witnesses = []Witness{introduction(insiderI, m), introduction(witnessA, m)}
	before = c.Stats()
	for range 100 {
		c.Step(pastGraceAt, syncFrom(records[insiderI].Peer, []Entry{m}))
	}
	if cost, want := costOf(before, c.Stats()), (costs{checked: 1}); cost != want {
		t.Fatalf("100 lists with two introductions cost %+v, want %+v", cost, want)
	}
	wantWitnesses(t, "the node holds", heldWitnesses(t, c, m.Peer.ID), insiderI, witnessA)
}

// A neighbour leaving says so over its link, and the node spreads its
// record in a membership broadcast: the record as the node keeps it, not as
// it came, with the forged introduction that the leaving member (an
// insider) put ahead of its genuine ones.
func TestLeavingNeighbourIsAnnouncedWithVerifiedIntroductionsOnly(t *testing.T) {
	keys, records := genuine()
	c := joinedCore(t, 29, heldByAll)
	alive := records[memberM]
	alive.Witnesses = []Witness{introduction(witnessA, alive), introduction(witnessB, alive)}
	c.Step(pastGraceAt, syncFrom(alive.Peer, []Entry{alive}))
	left := alive
	left.State = StateLeft
	left.Signature = keys[memberM].Sign(recordBytes(left))
	inGsName, _ := forgedIntroductions(left)
	left.Witnesses = []Witness{inGsName, alive.Witnesses[0], alive.Witnesses[1]}
	c.Step(pastGraceAt, syncFrom(left.Peer, []Entry{left}))
	if m, _ := c.members.get(left.Peer.ID); m.state != StateLeft {
		t.Fatalf("the member is held in state %d, want left", m.state)
	}
	announced := func(e Entry) bool {
		body, err := wire.MarshalValue(membershipEvent{Entry: e})
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(withTopic(TopicMembership, body))
		return c.Plumtree().Seen(pastGraceAt, plumtree.MessageID(sum[:plumtree.MessageIDLen]))
	}
	kept := left
	kept.Witnesses = alive.Witnesses
	if !announced(kept) || announced(left) {
		t.Fatalf("announced with its verified introductions: %v, as it came: %v; want only the first", announced(kept), announced(left))
	}
}

// introducedList returns the listSize genuine records, each introduced by
// the next two members of the list: a member list as a settled keyed
// network sends it, each record's witnesses after it.
var introducedList = sync.OnceValue(func() []Entry {
	keys, records := genuine()
	list := slices.Clone(records)
	for i := range list {
		e := &list[i]
		for _, w := range []int{(i + 1) % listSize, (i + 2) % listSize} {
			e.Witnesses = append(e.Witnesses, Witness{By: keys[w].ID(), Signature: keys[w].Sign(introductionBytes(e.Peer.ID, e.Peer.Addr))})
		}
	}
	return list
})

// BenchmarkJoinerList measures what a joiner pays to adopt a full member
// list of listSize genuine records in its join grace: bare, one check per
// record; introduced (see introducedList), the record's and those of the
// two introductions it keeps, since a node keeps only introductions it
// verified.
func BenchmarkJoinerList(b *testing.B) {
	_, records := genuine()
	for _, bench := range []struct {
		name string
		list []Entry
	}{{"bare", records}, {"introduced", introducedList()}} {
		b.Run(bench.name, func(b *testing.B) {
			var checked uint64
			for b.Loop() {
				c := newKeyedCore(b, 7)
				c.Step(joinedAt, syncFrom(contact, bench.list))
				if got := c.members.len(); got != listSize {
					b.Fatalf("the joiner holds %d members, want %d", got, listSize)
				}
				checked += c.Stats().SignaturesChecked
			}
			b.ReportMetric(float64(checked)/float64(b.N), "checks/list")
		})
	}
}
