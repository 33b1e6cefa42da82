package gossip

import (
	"fmt"
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
)

// Issue 10, row 3, with other values: an insider makes 2,000 keys and signs
// a record for each itself, all at one address of its choice. The
// signatures are valid, but one address is one listener: a core adopts one
// of them at most, refuses the rest (counted), adopts none at the address
// of a live member or at its own, and so probes at most one.
func TestSelfSignedInventedMembersAtOneAddressAreRefused(t *testing.T) {
	c := newKeyedCore(t, 5)
	now := time.Unix(1000, 0)
	live := signedEntry(testKey(t, 1, 0xbb), "10.9.9.9:1", 1, nil)
	c.learn(now, live, false, peer.Info{})
	var ups int
	for i := range 2000 {
		addr := "attacker:666"
		switch i % 4 {
		case 1:
			addr = live.Peer.Addr
		case 2:
			addr = c.cfg.Self.Addr
		}
		key, err := peer.KeyFromSeed(fmt.Appendf(nil, "%032d", i))
		if err != nil {
			t.Fatal(err)
		}
		c.learn(now, signedEntry(key, addr, 1, nil), false, peer.Info{})
	}
	for _, out := range c.Drain(nil) {
		if up, ok := out.(MemberUp); ok && up.Peer.ID != live.Peer.ID {
			ups++
			if up.Peer.Addr != "attacker:666" {
				t.Fatalf("adopted an invented member at %s, a live member's or this node's address", up.Peer.Addr)
			}
		}
	}
	if ups != 1 || c.members.len() != 2 {
		t.Fatalf("%d invented members adopted, %d members, want 1 and 2", ups, c.members.len())
	}
	if got := c.Stats().AddressTaken; got != 1999 {
		t.Fatalf("AddressTaken = %d, want 1999", got)
	}
}

// A node that comes back at its address with a new identity is adopted by
// a core it links to (its handshake proved the ID at that address), and by
// the others once the old identity is found dead.
func TestNewIdentityAtAnAddressIsAdoptedWhenLinkedOrOnceTheOldIsDead(t *testing.T) {
	now := time.Unix(1000, 0)
	old := signedEntry(testKey(t, 1, 0xbb), "10.9.9.9:1", 1, nil)
	renewed := signedEntry(testKey(t, 2, 0xbb), "10.9.9.9:1", 1, nil)

	linked := newKeyedCore(t, 5)
	linked.learn(now, old, false, peer.Info{})
	linked.Step(now, overlay.Received{From: renewed.Peer, Msg: &Sync{Digest: []byte{0}}})
	linked.learn(now, renewed, false, renewed.Peer)
	if _, ok := linked.members.get(renewed.Peer.ID); !ok {
		t.Fatal("the new identity, linked from its address, was refused")
	}

	other := newKeyedCore(t, 6)
	other.learn(now, old, false, peer.Info{})
	other.learn(now, renewed, false, peer.Info{})
	if _, ok := other.members.get(renewed.Peer.ID); ok || other.Stats().AddressTaken != 1 {
		t.Fatalf("the new identity was adopted while the old one held its address (AddressTaken %d)", other.Stats().AddressTaken)
	}
	dead := old
	dead.State = StateDead
	other.learn(now, dead, true, peer.Info{})
	other.learn(now, renewed, false, peer.Info{})
	if _, ok := other.members.get(renewed.Peer.ID); !ok {
		t.Fatal("the new identity was refused once the old one was dead")
	}
}
