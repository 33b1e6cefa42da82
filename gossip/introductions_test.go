package gossip

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
)

// pastGrace is a settled network whose nodes all joined more than
// DefaultJoinGrace ago: they adopt a member they do not hold only on two
// introductions.
func pastGrace(t *testing.T, nodes int, seed uint64) *testNet {
	t.Helper()
	net, _ := settledNet(t, nodes, seed)
	net.run(DefaultJoinGrace)
	if !allMembersKnown(net) {
		t.Fatal("member lists incomplete")
	}
	return net
}

// Issue 10, row 3, the insider's best effort: it makes a key per invented
// member and signs each one's record with it (valid signatures), at 500
// different addresses where nothing listens (so that one member per address
// does not stop them), introduces each one itself, adds a second
// introduction it forged in another member's name, and hands them to every
// node in a member list, then in membership broadcasts. No node adopts one
// or sends anything to their addresses; every node counts the refusals.
func TestInventedMembersAtManyAddressesAreNeverAdoptedNorDialled(t *testing.T) {
	net := pastGrace(t, 20, 61)
	insider, framed := net.nodes[4], net.nodes[9]
	var fakes []Entry
	for i := range 500 {
		key, err := peer.KeyFromSeed(fmt.Appendf(nil, "%032d", i))
		if err != nil {
			t.Fatal(err)
		}
		e := signedEntry(key, fmt.Sprintf("attacker-%d:666", i), 1, nil)
		sig := insider.core.cfg.Key.Sign(introductionBytes(e.Peer.ID, e.Peer.Addr))
		e.Witnesses = []Witness{{By: insider.info.ID, Signature: sig}, {By: framed.info.ID, Signature: sig}}
		fakes = append(fakes, e)
	}
	net.onOutput = func(n *testNode, out any) {
		if up, ok := out.(MemberUp); ok && up.Peer.ID != insider.info.ID && !slices.ContainsFunc(net.nodes, func(m *testNode) bool { return m.info.ID == up.Peer.ID }) {
			t.Fatalf("node %d adopted an invented member at %s", n.index, up.Peer.Addr)
		}
	}
	for _, n := range net.nodes {
		if n != insider {
			net.step(n, overlay.Received{From: insider.info, Msg: &Sync{Full: true, Reply: true, Entries: fakes}})
		}
	}
	for _, e := range fakes[:50] {
		insider.core.announce(e)
	}
	net.step(insider, overlay.Tick{})
	net.run(time.Minute)
	for _, n := range net.alive() {
		if got := len(n.core.Members()); got != 20 {
			t.Fatalf("node %d lists %d members, want 20", n.index, got)
		}
		// The forged introductions fail their checks: past the cap of
		// the message carrying them (Config.SignatureFailures), the
		// rest of the insider's list is refused unverified; each
		// broadcast is a message of its own (see budget.go).
		if st := n.core.Stats(); n != insider && st.Unintroduced+st.SignatureBudgetRefused < 500 {
			t.Fatalf("node %d counted %d unintroduced records and %d refused unverified, want at least 500",
				n.index, st.Unintroduced, st.SignatureBudgetRefused)
		}
	}
	for i := range fakes {
		if got := net.nowhere[fmt.Sprintf("attacker-%d:666", i)]; got != 0 {
			t.Fatalf("%d messages or links to invented member %d's address", got, i)
		}
	}
}

// A node that joins a network formed long ago is introduced by its first
// neighbours and adopted by every member within a second or so: its own
// record carries two introductions, which every member can check, and
// every member then holds (and lists) the record with both, its witnesses
// too, though a node keeps only introductions it verified.
func TestJoinerIsIntroducedAndAdoptedByEveryMember(t *testing.T) {
	for seed := uint64(62); seed < 65; seed++ {
		net := pastGrace(t, 40, seed)
		joiner := net.addNode(Config{})
		net.step(joiner, Join{Contacts: []string{net.nodes[net.rand.IntN(40)].info.Addr}})
		took, ok := net.runUntil(10*time.Second, func() bool { return allMembersKnown(net) })
		if !ok {
			t.Fatalf("seed %d: the joiner is not on every member list after %v", seed, took)
		}
		if got := len(joiner.core.self.Witnesses); got != Introductions {
			t.Fatalf("seed %d: the joiner's record carries %d introductions, want %d", seed, got, Introductions)
		}
		// Every member holds, and lists, the record with both, its
		// witnesses included (each checks its own with its own key).
		held, ok := net.runUntil(10*time.Second, func() bool {
			for _, n := range net.nodes[:40] {
				m, ok := n.core.members.get(joiner.info.ID)
				if !ok || !sameWitnesses(m.rec.entry.Witnesses, joiner.core.self.Witnesses) {
					return false
				}
			}
			return true
		})
		if !ok {
			t.Fatalf("seed %d: some members hold the joiner's record without its introductions %v later", seed, held)
		}
		t.Logf("seed %d: the joiner is on every member list %v after it joined, with its introductions %v later", seed, took, held)
	}
}

// When a member that introduced another dies, the introduced member puts
// another introduction in its record (asking its neighbours for one if it
// has none at hand), so that nodes that join later, or forget the dead
// witness, can still check it.
func TestIntroductionOfADeadWitnessIsReplaced(t *testing.T) {
	net := pastGrace(t, 30, 66)
	joiner := net.addNode(Config{})
	net.step(joiner, Join{Contacts: []string{net.nodes[3].info.Addr}})
	if _, ok := net.runUntil(10*time.Second, func() bool { return allMembersKnown(net) }); !ok {
		t.Fatal("the joiner is not on every member list")
	}
	witness := net.byID[joiner.core.self.Witnesses[0].By]
	net.kill(witness)
	took, ok := net.runUntil(30*time.Second, func() bool {
		ws := joiner.core.self.Witnesses
		return len(ws) == Introductions && !slices.ContainsFunc(ws, func(w Witness) bool { return w.By == witness.info.ID })
	})
	if !ok {
		t.Fatalf("the dead witness's introduction is still in the record after %v", took)
	}
	late := net.addNode(Config{})
	net.step(late, Join{Contacts: []string{net.nodes[5].info.Addr}})
	if _, ok := net.runUntil(10*time.Second, func() bool { return knows(late, joiner.info.ID) }); !ok {
		t.Fatal("a node that joined later does not hold the member")
	}
	t.Logf("the record had a live witness again %v after its witness died", took)
}
