package p2p_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2p-go/p2p"
	"github.com/p2p-go/p2p/gossip"
	"github.com/p2p-go/p2p/internal/testutil"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport/tcp"
	"github.com/p2p-go/p2p/wire"
)

// introduce signs by's introduction of id at addr as gossip's witnesses sign
// them (gossip/introductions.go).
func introduce(by *peer.Key, id peer.ID, addr string) []byte {
	buf := []byte("p2p/gossip introduction v1\x00")
	buf = append(buf, id[:]...)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(addr)))
	return by.Sign(append(buf, addr...))
}

// trapIP is the loopback address the traps listen on. No other test
// listens or dials there: on 127.0.0.1 a test of another package, run at
// the same time, that dials a port it used before (a stopped node's) can
// reach a trap that took that port since, and count as a dial (CI saw one
// in 2,000 traps).
const trapIP = "127.0.0.88"

// listenTrap listens on a loopback address that no node should dial, counts
// the connections made to it in dialled, and returns the address.
func listenTrap(t *testing.T, dialled *atomic.Int64) string {
	t.Helper()
	trap, err := net.Listen("tcp", trapIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trap.Close() })
	go func() {
		for {
			conn, err := trap.Accept()
			if err != nil {
				return
			}
			dialled.Add(1)
			conn.Close()
		}
	}()
	return trap.Addr().String()
}

// membersOnEvery reports whether every node lists want members.
func membersOnEvery(nodes []*p2p.Broadcaster, want int) func() bool {
	return func() bool {
		for _, n := range nodes {
			if m, err := n.Members(context.Background()); err != nil || len(m) != want {
				return false
			}
		}
		return true
	}
}

// sendSyncToEach marshals a member list and sends it to every node from
// the transport of an insider (holding the cluster secret); the connections
// close with the test.
func sendSyncToEach(t *testing.T, insider *tcp.Transport, nodes []*p2p.Broadcaster, entries []gossip.Entry) {
	t.Helper()
	msg, err := wire.Marshal(&gossip.Sync{Full: true, Reply: true, Entries: entries})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		conn, err := insider.Dial(context.Background(), n.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if err := conn.Send(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
}

// waitSyncs waits until every node has started n more member-list
// exchanges: a wait measured in protocol rounds rather than in seconds.
func waitSyncs(t *testing.T, nodes []*p2p.Broadcaster, n uint64) {
	t.Helper()
	syncs := make([]uint64, len(nodes))
	for i, b := range nodes {
		syncs[i] = b.Stats().Gossip.Syncs
	}
	testutil.Eventually(t, 30*time.Second, fmt.Sprintf("%d more member-list exchanges on every node", n), func() bool {
		for i, b := range nodes {
			if b.Stats().Gossip.Syncs < syncs[i]+n {
				return false
			}
		}
		return true
	})
}

// Issue 10, row 3, at its hardest: an insider that is a member (the nodes
// adopted its own signed record from its links) makes a key per invented
// member, signs each one's record with it, puts each at its own address
// (2,000 listeners, so that one member per address stops nothing),
// introduces each itself and forges a second introduction in a real
// member's name, and sends the list to every node. The nodes run without a
// join grace and probe a member every 100 ms. No node adopts an invented
// member, none of the 2,000 addresses is dialled during ten member-list
// exchanges per node, and every node counts 2,000 refusals (unintroduced, or
// unverified past the cap of failed signature checks of the insider's list).
func TestInsiderInventedMembersAtManyAddressesOverTCP(t *testing.T) {
	ctx := context.Background()
	secret, _ := p2p.ParseSecret(p2p.GenerateSecret())
	tune := func(c *p2p.Config) {
		c.Gossip.JoinGrace = time.Nanosecond
		c.Gossip.ProbeInterval = 100 * time.Millisecond
		c.Gossip.SyncInterval = 100 * time.Millisecond
	}
	nodes := []*p2p.Broadcaster{startKeyedTCPNode(t, secret, nil, tune)}
	for range 2 {
		nodes = append(nodes, startKeyedTCPNode(t, secret, nil, tune, nodes[0].Addr()))
	}
	testutil.Eventually(t, 30*time.Second, "three members on every node", membersOnEvery(nodes, 3))

	var dialled atomic.Int64
	traps := make([]string, 2000)
	for i := range traps {
		traps[i] = listenTrap(t, &dialled)
	}

	key, _ := peer.GenerateKey(nil)
	insider, err := tcp.Listen(tcp.Config{ListenAddr: "127.0.0.1:0", Key: key, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	defer insider.Close()
	self := signMemberRecord(key, gossip.Entry{Peer: peer.Info{ID: key.ID(), Addr: insider.LocalAddr()}, Incarnation: 1, State: gossip.StateAlive})
	framed := nodes[1].ID()
	var fakes []gossip.Entry
	for _, addr := range traps {
		fake, _ := peer.GenerateKey(nil)
		e := signMemberRecord(fake, gossip.Entry{Peer: peer.Info{ID: fake.ID(), Addr: addr}, Incarnation: 1, State: gossip.StateAlive})
		sig := introduce(key, fake.ID(), addr)
		e.Witnesses = []gossip.Witness{{By: key.ID(), Signature: sig}, {By: framed, Signature: sig}}
		fakes = append(fakes, e)
	}
	// Refused for want of introductions, or, once the forged
	// introductions used up the list's cap of failed signature checks
	// (gossip Config.SignatureFailures), refused unverified.
	refused := func(n *p2p.Broadcaster) uint64 {
		st := n.Stats().Gossip
		return st.Unintroduced + st.SignatureBudgetRefused
	}
	before := make([]uint64, len(nodes))
	for i, n := range nodes {
		before[i] = refused(n)
	}
	sendSyncToEach(t, insider, nodes, []gossip.Entry{self})
	// The insider is a member now (each node adopted it from its link).
	testutil.Eventually(t, 30*time.Second, "the insider on every member list", membersOnEvery(nodes, 4))
	sendSyncToEach(t, insider, nodes, fakes)
	testutil.Eventually(t, 30*time.Second, "2,000 unintroduced records counted on every node", func() bool {
		for i, n := range nodes {
			if refused(n)-before[i] < 2000 {
				return false
			}
		}
		return true
	})
	// Ten member-list exchanges per node, about a second: an adopted
	// invented member would be probed (one random member every 100 ms)
	// and handed on in these exchanges.
	waitSyncs(t, nodes, 10)
	for i, n := range nodes {
		m, _ := n.Members(ctx)
		if len(m) > 4 {
			t.Fatalf("node %d lists %d members: it adopted invented ones", i, len(m))
		}
	}
	if n := dialled.Load(); n != 0 {
		t.Fatalf("the invented members' addresses were dialled %d times", n)
	}
	t.Logf("unintroduced on node 0: %d, refused unverified %d; the 2,000 addresses dialled %d times",
		nodes[0].Stats().Gossip.Unintroduced, nodes[0].Stats().Gossip.SignatureBudgetRefused, dialled.Load())
}

// A node that joins a network of nine real nodes past their join grace is
// on every member list, including those of members it has no link to,
// which adopted it on the introductions of its first neighbours.
func TestJoinerIsIntroducedOverTCP(t *testing.T) {
	ctx := context.Background()
	secret, _ := p2p.ParseSecret(p2p.GenerateSecret())
	tune := func(c *p2p.Config) {
		c.Gossip.JoinGrace = time.Second
		c.Gossip.SyncInterval = 100 * time.Millisecond
	}
	nodes := []*p2p.Broadcaster{startKeyedTCPNode(t, secret, nil, tune)}
	for i := range 8 {
		nodes = append(nodes, startKeyedTCPNode(t, secret, nil, tune, nodes[i].Addr()))
	}
	testutil.Eventually(t, 30*time.Second, "nine members on every node", membersOnEvery(nodes, 9))
	// Past the join grace: twenty member-list exchanges per node (every
	// 100 ms at most) take two seconds at least.
	waitSyncs(t, nodes, 20)
	joiner := startKeyedTCPNode(t, secret, nil, tune, nodes[0].Addr())
	nodes = append(nodes, joiner)
	testutil.Eventually(t, 30*time.Second, "ten members on every node", membersOnEvery(nodes, 10))
	neighbours, err := joiner.Neighbors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(neighbours) >= 9 {
		t.Fatalf("the joiner has links to all %d members: nothing was adopted on introductions", len(neighbours))
	}
	if got := joiner.Stats().Gossip.IntroductionsReceived; got < 2 {
		t.Fatalf("the joiner received %d introductions, want 2 at least", got)
	}
	var refused uint64
	for _, n := range nodes[:9] {
		refused += n.Stats().Gossip.Unintroduced
	}
	t.Logf("the joiner has %d neighbours, received %d introductions; its first record was refused %d times before them",
		len(neighbours), joiner.Stats().Gossip.IntroductionsReceived, refused)
}
