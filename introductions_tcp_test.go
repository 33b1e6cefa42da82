package p2p_test

import (
	"context"
	"encoding/binary"
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

// Issue 10, row 3, at its hardest: an insider that is a member (the nodes
// adopted its own signed record from its links) makes a key per invented
// member, signs each one's record with it, puts each at its own address
// (2,000 listeners, so that one member per address stops nothing),
// introduces each itself and forges a second introduction in a real
// member's name, and sends the list to every node. The nodes run without a
// join grace and probe a member every 100 ms. No node adopts an invented
// member, none of the 2,000 addresses is dialled during ten member-list
// exchanges per node, and every node counts 2,000 unintroduced records.
func TestInsiderInventedMembersAtManyAddressesOverTCP(t *testing.T) {
	ctx := context.Background()
	secret, _ := p2p.ParseSecret(p2p.GenerateSecret())
	var nodes []*p2p.Broadcaster
	for i := range 3 {
		cfg := p2p.Config{ListenAddr: "127.0.0.1:0", DataDir: t.TempDir(), Secret: secret, Logger: testLogger(t)}
		cfg.Gossip.JoinGrace = time.Nanosecond
		cfg.Gossip.ProbeInterval = 100 * time.Millisecond
		cfg.Gossip.SyncInterval = 100 * time.Millisecond
		if i > 0 {
			cfg.Bootstrap = []string{nodes[0].Addr()}
		}
		b, err := p2p.NewBroadcaster(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		if err := b.Start(ctx); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, b)
	}
	members := func(want int) func() bool {
		return func() bool {
			for _, n := range nodes {
				if m, err := n.Members(ctx); err != nil || len(m) != want {
					return false
				}
			}
			return true
		}
	}
	testutil.Eventually(t, 30*time.Second, "three members on every node", members(3))

	var dialled atomic.Int64
	traps := make([]string, 2000)
	for i := range traps {
		trap, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer trap.Close()
		traps[i] = trap.Addr().String()
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
	hello, err := wire.Marshal(&gossip.Sync{Full: true, Reply: true, Entries: []gossip.Entry{self}})
	if err != nil {
		t.Fatal(err)
	}
	list, err := wire.Marshal(&gossip.Sync{Full: true, Reply: true, Entries: fakes})
	if err != nil {
		t.Fatal(err)
	}
	before := make([]uint64, len(nodes))
	for i, n := range nodes {
		before[i] = n.Stats().Gossip.Unintroduced
		conn, err := insider.Dial(ctx, n.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := conn.Send(ctx, hello); err != nil {
			t.Fatal(err)
		}
	}
	// The insider is a member now (each node adopted it from its link).
	testutil.Eventually(t, 30*time.Second, "the insider on every member list", members(4))
	for _, n := range nodes {
		conn, err := insider.Dial(ctx, n.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.Send(ctx, list); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 30*time.Second, "2,000 unintroduced records counted on every node", func() bool {
		for i, n := range nodes {
			if n.Stats().Gossip.Unintroduced-before[i] < 2000 {
				return false
			}
		}
		return true
	})
	// Ten member-list exchanges per node, about a second: an adopted
	// invented member would be probed (one random member every 100 ms)
	// and handed on in these exchanges.
	syncs := make([]uint64, len(nodes))
	for i, n := range nodes {
		syncs[i] = n.Stats().Gossip.Syncs
	}
	testutil.Eventually(t, 30*time.Second, "ten more member-list exchanges on every node", func() bool {
		for i, n := range nodes {
			if n.Stats().Gossip.Syncs < syncs[i]+10 {
				return false
			}
		}
		return true
	})
	for i, n := range nodes {
		m, _ := n.Members(ctx)
		if len(m) > 4 {
			t.Fatalf("node %d lists %d members: it adopted invented ones", i, len(m))
		}
	}
	if n := dialled.Load(); n != 0 {
		t.Fatalf("the invented members' addresses were dialled %d times", n)
	}
	t.Logf("unintroduced on node 0: %d; the 2,000 addresses dialled %d times", nodes[0].Stats().Gossip.Unintroduced, dialled.Load())
}

// A node that joins a network of nine real nodes past their join grace is
// on every member list, including those of members it has no link to,
// which adopted it on the introductions of its first neighbours.
func TestJoinerIsIntroducedOverTCP(t *testing.T) {
	ctx := context.Background()
	secret, _ := p2p.ParseSecret(p2p.GenerateSecret())
	start := func(bootstrap ...string) *p2p.Broadcaster {
		cfg := p2p.Config{ListenAddr: "127.0.0.1:0", DataDir: t.TempDir(), Secret: secret, Logger: testLogger(t), Bootstrap: bootstrap}
		cfg.Gossip.JoinGrace = time.Second
		cfg.Gossip.SyncInterval = 100 * time.Millisecond
		b, err := p2p.NewBroadcaster(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		if err := b.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return b
	}
	var nodes []*p2p.Broadcaster
	for i := range 9 {
		if i == 0 {
			nodes = append(nodes, start())
		} else {
			nodes = append(nodes, start(nodes[i-1].Addr()))
		}
	}
	members := func(want int) func() bool {
		return func() bool {
			for _, n := range nodes {
				if m, err := n.Members(ctx); err != nil || len(m) != want {
					return false
				}
			}
			return true
		}
	}
	testutil.Eventually(t, 30*time.Second, "nine members on every node", members(9))
	// Past the join grace: twenty member-list exchanges per node (every
	// 100 ms at most) take two seconds at least.
	syncs := make([]uint64, len(nodes))
	for i, n := range nodes {
		syncs[i] = n.Stats().Gossip.Syncs
	}
	testutil.Eventually(t, 30*time.Second, "twenty more member-list exchanges on every node", func() bool {
		for i, n := range nodes {
			if n.Stats().Gossip.Syncs < syncs[i]+20 {
				return false
			}
		}
		return true
	})
	joiner := start(nodes[0].Addr())
	nodes = append(nodes, joiner)
	testutil.Eventually(t, 30*time.Second, "ten members on every node", members(10))
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
