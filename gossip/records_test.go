package gossip

import (
	"fmt"
	"testing"
	"time"

	"github.com/p2p-go/p2p/hyparview"
	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
)

// TestPoisonedIncarnationIsRefusedAndRefuted: an insider declares a live
// member dead at incarnation 2^64-1 (issue 10, row 1). Nobody believes it
// (the member never signed that incarnation), so the member is never absent
// from any member list; the member itself, told of the claim, counts it as
// an attack, reports it once, and refutes it without its incarnation
// wrapping.
func TestPoisonedIncarnationIsRefusedAndRefuted(t *testing.T) {
	net, _ := settledNet(t, 20, 51)
	victim, insider := net.nodes[4], net.nodes[9]
	var attacks []IncarnationAttack
	absent := 0
	net.onOutput = func(n *testNode, out any) {
		switch o := out.(type) {
		case IncarnationAttack:
			attacks = append(attacks, o)
		case MemberDown:
			if o.Peer.ID == victim.info.ID {
				absent++
			}
		}
	}
	own := victim.core.self.Incarnation
	poison := victim.core.self
	poison.State = StateDead
	poison.Incarnation = 1<<64 - 1
	// The insider sends the claim in a member list to every node, and in
	// a probe to the victim itself.
	for _, n := range net.nodes {
		if n != insider {
			net.at(0, n.index, overlay.Received{From: insider.info, Msg: &Sync{Full: true, Reply: true, Entries: []Entry{poison}}})
		}
	}
	net.at(0, victim.index, overlay.Received{From: insider.info, Msg: &Probe{Nonce: 1, Claim: 1<<64 - 1}})
	net.run(DefaultProbeInterval)
	if absent != 0 {
		t.Fatalf("the victim was announced failed %d times", absent)
	}
	if len(attacks) != 1 || attacks[0].Claimed != 1<<64-1 || attacks[0].Own != own {
		t.Fatalf("attack reports %+v, want one with the claimed and own incarnations", attacks)
	}
	// Two forged claims reached the victim (the probe and the list): each
	// is refuted with its own next incarnation.
	if got := victim.core.self.Incarnation; got != own+2 {
		t.Fatalf("victim's incarnation %d after refuting, want %d (its own next ones, not wrapped)", got, own+2)
	}
	invalid := uint64(0)
	for _, n := range net.alive() {
		invalid += n.core.Stats().InvalidRecords
		if !knows(n, victim.info.ID) {
			t.Fatalf("node %d lost the victim", n.index)
		}
	}
	if invalid < 18 {
		t.Fatalf("%d forged records counted, want one per node told", invalid)
	}
}

// TestInventedMembersAreNeverAdopted: an insider sends one member list of
// 2,000 invented members at an address of its choice (issue 10, row 3).
// Records their members did not sign are refused and counted; none is
// adopted, probed or dialled, and no node fails more checks than the cap of
// one message (Config.SignatureFailures).
func TestInventedMembersAreNeverAdopted(t *testing.T) {
	net, _ := settledNet(t, 10, 52)
	insider := net.nodes[3]
	var fakes []Entry
	for i := range 2000 {
		key, err := peer.KeyFromSeed(fmt.Appendf(nil, "%032d", i))
		if err != nil {
			t.Fatal(err)
		}
		e := Entry{Peer: peer.Info{ID: key.ID(), Addr: "attacker:666"}, Incarnation: 1, State: StateAlive, PublicKey: key.Public()}
		if i%2 == 0 {
			// Signed, but by the insider: not the member's key.
			e.Signature = insider.core.cfg.Key.Sign(recordBytes(e))
		} else {
			e.Signature = make([]byte, 64)
		}
		fakes = append(fakes, e)
	}
	net.onOutput = func(n *testNode, out any) {
		if up, ok := out.(MemberUp); ok && up.Peer.Addr == "attacker:666" {
			t.Fatalf("node %d adopted an invented member", n.index)
		}
	}
	for _, n := range net.nodes {
		if n != insider {
			net.step(n, overlay.Received{From: insider.info, Msg: &Sync{Full: true, Reply: true, Entries: fakes}})
		}
	}
	net.run(time.Minute)
	for _, n := range net.alive() {
		if got := len(n.core.Members()); got != 10 {
			t.Fatalf("node %d lists %d members, want 10", n.index, got)
		}
		// Past the message's cap of failed checks, the rest are
		// refused unverified (see budget.go).
		if st := n.core.Stats(); n != insider && (st.InvalidRecords+st.SignatureBudgetRefused < 2000 || st.InvalidRecords > DefaultSignatureFailures) {
			t.Fatalf("node %d counted %d invalid records and %d refused unverified, want 2000, at most %d of them checked",
				n.index, st.InvalidRecords, st.SignatureBudgetRefused, DefaultSignatureFailures)
		}
	}
	if dialled := net.nowhere["attacker:666"]; dialled != 0 {
		t.Fatalf("%d messages or links to the attacker's address", dialled)
	}
}

// TestInventedPeersInHyParViewAreNeverDialled: an insider walks invented
// peers at its chosen address through HyParView (a FORWARDJOIN's new node, a
// SHUFFLE's origin and list). No signed record vouches for that address, so
// no node sends anything there; the refusals are counted.
func TestInventedPeersInHyParViewAreNeverDialled(t *testing.T) {
	net, _ := settledNet(t, 20, 53)
	insider := net.nodes[6]
	fake := func(i int) peer.Info {
		key, _ := peer.KeyFromSeed(fmt.Appendf(nil, "%032d", i))
		return peer.Info{ID: key.ID(), Addr: "attacker:666"}
	}
	var shuffled []peer.Info
	for i := range 8 {
		shuffled = append(shuffled, fake(100+i))
	}
	for i, n := range net.nodes {
		if n == insider {
			continue
		}
		net.at(0, n.index, overlay.Received{From: insider.info, Msg: &hyparview.ForwardJoinMsg{NewNode: fake(i), TTL: 0}})
		net.at(0, n.index, overlay.Received{From: insider.info, Msg: &hyparview.ShuffleMsg{Origin: fake(50 + i), TTL: 0, Peers: shuffled}})
	}
	net.run(time.Minute)
	if got := net.nowhere["attacker:666"]; got != 0 {
		t.Fatalf("%d messages or links to the attacker's address", got)
	}
	var refused uint64
	for _, n := range net.alive() {
		refused += n.core.Stats().UnvouchedDials
	}
	if refused == 0 {
		t.Fatal("no refusal counted")
	}
	if !net.connected() || !allMembersKnown(net) {
		t.Fatal("the overlay or the member lists suffered")
	}
	t.Logf("%d messages to invented peers refused", refused)
}

// BenchmarkRecordSign and BenchmarkRecordVerify measure what a member record
// costs: signed once per incarnation by its member, verified once per
// record by every node (a record already held is not verified again).
func BenchmarkRecordSign(b *testing.B) {
	key, _ := peer.KeyFromSeed(make([]byte, 32))
	e := Entry{Peer: peer.Info{ID: key.ID(), Addr: "127.0.0.1:7001"}, Incarnation: 1, State: StateAlive, Name: "a", Tags: map[string]string{"role": "web"}}
	for b.Loop() {
		_ = key.Sign(recordBytes(e))
	}
}

func BenchmarkRecordVerify(b *testing.B) {
	key, _ := peer.KeyFromSeed(make([]byte, 32))
	e := Entry{Peer: peer.Info{ID: key.ID(), Addr: "127.0.0.1:7001"}, Incarnation: 1, State: StateAlive, Name: "a", Tags: map[string]string{"role": "web"}}
	e.PublicKey = key.Public()
	e.Signature = key.Sign(recordBytes(e))
	verifier, _ := peer.KeyFromSeed(append(make([]byte, 31), 1))
	c, err := New(Config{Self: peer.Info{ID: verifier.ID(), Addr: "127.0.0.1:7002"}, Key: verifier})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if !c.verified(e) {
			b.Fatal("not verified")
		}
	}
}
