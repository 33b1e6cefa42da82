package p2p_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2p-go/p2p"
	"github.com/p2p-go/p2p/kademlia"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport/memnet"
)

// dhtCluster is n DHT nodes; inboxes[i] collects node i's messages.
type dhtCluster struct {
	nodes   []*p2p.DHT
	inboxes []*inbox
}

func dhtKey(t *testing.T, i int) *peer.Key {
	t.Helper()
	key, err := peer.KeyFromSeed(bytes.Repeat([]byte{byte(i + 1), 0xd4}, 16))
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// startDHTCluster starts n nodes, each joining through the one before it,
// with newConfig supplying the transport (and secret) of node i.
func startDHTCluster(t *testing.T, n int, newConfig func(i int, key *peer.Key) p2p.DHTConfig) *dhtCluster {
	t.Helper()
	c := &dhtCluster{}
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, d := range c.nodes {
			wg.Go(func() {
				if err := d.Close(); err != nil {
					t.Errorf("close %s: %v", d.ID().Short(), err)
				}
			})
		}
		wg.Wait()
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range n {
		key := dhtKey(t, i)
		cfg := newConfig(i, key)
		cfg.Key, cfg.Seed, cfg.Logger = key, uint64(i+1), testLogger(t)
		cfg.DataDir = t.TempDir()
		if i > 0 {
			cfg.Bootstrap = []string{c.nodes[i-1].Addr()}
		}
		d, err := p2p.NewDHT(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, d)
		in := newInbox()
		c.inboxes = append(c.inboxes, in)
		d.React(in.react)
		if err := d.Start(ctx); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		if i > 0 {
			select {
			case <-d.Joined():
			case <-ctx.Done():
				t.Fatalf("node %d did not join through node %d", i, i-1)
			}
		}
	}
	return c
}

func memDHTCluster(t *testing.T, n int) *dhtCluster {
	t.Helper()
	network := memnet.New(memnet.Config{Seed: 7, Latency: time.Millisecond})
	t.Cleanup(func() { network.Close() })
	return startDHTCluster(t, n, func(i int, key *peer.Key) p2p.DHTConfig {
		tr, err := network.Listen(key, fmt.Sprintf("dht-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		return p2p.DHTConfig{Transport: tr}
	})
}

// TestDHTSendReachesEveryReactorExactlyOnce: a broadcast over the routing
// tables (El-Ansary et al.) reaches every other node's reactors, with N - 1
// messages in all, so exactly once each, whoever sends it.
func TestDHTSendReachesEveryReactorExactlyOnce(t *testing.T) {
	const n = 20
	c := memDHTCluster(t, n)
	ctx := context.Background()
	sentBefore := totalBroadcastsSent(t, c)
	senders := []int{0, 7, 19}
	for index, sender := range senders {
		if err := c.nodes[sender].Send(ctx, map[string]int{"index": index}); err != nil {
			t.Fatal(err)
		}
	}
	for index, sender := range senders {
		for i, in := range c.inboxes {
			if i == sender {
				continue
			}
			m := in.waitFor(t, fmt.Sprintf("message %d at node %d", index, i), hasField("index", index))
			if m.Direct || m.From != c.nodes[sender].ID() || m.Hops < 1 {
				t.Errorf("node %d got message %d as direct=%v from %s hops %d, want a broadcast from %s", i, index, m.Direct, m.From.Short(), m.Hops, c.nodes[sender].ID().Short())
			}
		}
	}
	// Each node got each message at least once; the tree sends N - 1
	// copies per broadcast, so none got one twice.
	if sent := totalBroadcastsSent(t, c) - sentBefore; sent != uint64(len(senders)*(n-1)) {
		t.Errorf("%d broadcast messages sent for %d broadcasts in %d nodes, want %d", sent, len(senders), n, len(senders)*(n-1))
	}
	for i, in := range c.inboxes {
		for index, sender := range senders {
			if got := in.count(hasField("index", index)); i != sender && got != 1 {
				t.Errorf("node %d delivered message %d %d times", i, index, got)
			}
			if got := in.count(hasField("index", index)); i == sender && got != 0 {
				t.Errorf("sender %d delivered its own message %d times", i, got)
			}
		}
	}
}

func totalBroadcastsSent(t *testing.T, c *dhtCluster) uint64 {
	t.Helper()
	var total uint64
	for _, d := range c.nodes {
		total += d.Stats().Kademlia.BroadcastsSent
	}
	return total
}

// TestDHTSendOneAndReply: SendOne reaches one of the sender's neighbours as a
// direct message, and Reply, to it or to a broadcast, goes straight back to
// the original sender, found by its ID when the message was relayed.
func TestDHTSendOneAndReply(t *testing.T) {
	const n = 20
	c := memDHTCluster(t, n)
	ctx := context.Background()
	for i, d := range c.nodes {
		d.React(func(m *p2p.Message) {
			if !hasField("ask", true)(m) {
				return
			}
			if err := m.Reply(ctx, map[string]any{"answer": i}); err != nil {
				t.Errorf("node %d: reply: %v", i, err)
			}
		})
	}
	neighbors, err := c.nodes[3].Neighbors(ctx)
	if err != nil || len(neighbors) == 0 {
		t.Fatalf("neighbors: %v, %v", neighbors, err)
	}
	isNeighbor := map[peer.ID]bool{}
	for _, m := range neighbors {
		isNeighbor[m.ID] = true
	}
	if err := c.nodes[3].SendOne(ctx, map[string]any{"ask": true}); err != nil {
		t.Fatal(err)
	}
	reply := c.inboxes[3].waitFor(t, "the reply to SendOne", func(m *p2p.Message) bool { return m.Direct })
	if !isNeighbor[reply.From] || reply.FromAddr == "" {
		t.Errorf("reply from %s at %q, not one of the neighbours", reply.From.Short(), reply.FromAddr)
	}
	if got := c.inboxes[3].count(func(m *p2p.Message) bool { return m.Direct }); got != 1 {
		t.Errorf("%d replies to one SendOne, want 1", got)
	}

	// A broadcast from node 11: every other node replies to it.
	if err := c.nodes[11].Send(ctx, map[string]any{"ask": true, "round": 2}); err != nil {
		t.Fatal(err)
	}
	for i := range c.nodes {
		if i == 11 {
			continue
		}
		c.inboxes[11].waitFor(t, fmt.Sprintf("node %d's reply to the broadcast", i), func(m *p2p.Message) bool {
			return m.Direct && m.From == c.nodes[i].ID() && hasField("answer", i)(m)
		})
	}
}

// TestDHTPutGet: a record put on one node is read from any other, verified;
// a later Put of the same name replaces it, a forged version is refused, and
// an immutable record is found by its hash.
func TestDHTPutGet(t *testing.T) {
	const n = 20
	c := memDHTCluster(t, n)
	ctx := context.Background()
	writer := c.nodes[4]
	key, err := writer.Put(ctx, "config", map[string]int{"version": 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := kademlia.MutableKey(dhtKey(t, 4).Public(), []byte("config")); key != want {
		t.Fatalf("Put returned key %s, want SHA-256(writer || name) %s", key.Short(), want.Short())
	}
	rec, err := c.nodes[17].Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	var value struct{ Version int }
	if err := rec.Decode(&value); err != nil || value.Version != 1 {
		t.Fatalf("Get: %+v, %v", value, err)
	}
	if rec.Writer != writer.ID() || rec.Name != "config" || rec.Key != key {
		t.Errorf("Get: writer %s name %q key %s, want %s config %s", rec.Writer.Short(), rec.Name, rec.Key.Short(), writer.ID().Short(), key.Short())
	}
	firstSeq := rec.Seq

	if _, err := writer.Put(ctx, "config", map[string]int{"version": 2}); err != nil {
		t.Fatal(err)
	}
	for _, reader := range []int{0, 9, 19} {
		rec, err := c.nodes[reader].Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if err := rec.Decode(&value); err != nil || value.Version != 2 || rec.Seq <= firstSeq {
			t.Errorf("node %d reads version %d seq %d after the update (first seq %d)", reader, value.Version, rec.Seq, firstSeq)
		}
	}

	// Another key cannot write the record: its signature does not verify.
	forged := kademlia.NewMutableRecord(dhtKey(t, 9), []byte("config"), []byte(`{"version":666}`), rec.Seq+1)
	forged.Writer, forged.Key = rec.Record.Writer, key
	if _, err := c.nodes[9].PutRecord(ctx, forged); !errors.Is(err, kademlia.ErrForged) {
		t.Errorf("PutRecord of a forged record: %v, want ErrForged", err)
	}
	if rec, err := c.nodes[12].Get(ctx, key); err != nil || rec.Decode(&value) != nil || value.Version != 2 {
		t.Errorf("after the forgery, Get: %+v %v", value, err)
	}

	immutable, err := c.nodes[2].PutImmutable(ctx, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if want := kademlia.ImmutableKey([]byte(`["a","b"]`)); immutable != want {
		t.Errorf("PutImmutable key %s, want the SHA-256 of the JSON %s", immutable.Short(), want.Short())
	}
	got, err := c.nodes[15].Get(ctx, immutable)
	if err != nil || string(got.Value) != `["a","b"]` || !got.Writer.IsZero() {
		t.Errorf("Get immutable: %+v, %v", got, err)
	}

	missing := kademlia.ImmutableKey([]byte("never stored"))
	if _, err := c.nodes[1].Get(ctx, missing); !errors.Is(err, p2p.ErrNotFound) || !errors.Is(err, kademlia.ErrNotFound) {
		t.Errorf("Get of a missing key: %v, want ErrNotFound", err)
	}
}

// TestDHTLookupAndMembers: in a network smaller than k, every node's routing
// table holds every other node, and a lookup of any ID returns them all,
// closest first.
func TestDHTLookupAndMembers(t *testing.T) {
	const n = 12
	c := memDHTCluster(t, n)
	ctx := context.Background()
	members, err := c.nodes[5].Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != n || members[0].ID != c.nodes[5].ID() {
		t.Errorf("Members: %d, first %s; want %d starting with the node itself", len(members), members[0].ID.Short(), n)
	}
	target := kademlia.ImmutableKey([]byte("target"))
	found, err := c.nodes[0].Lookup(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != n-1 {
		t.Errorf("Lookup found %d nodes, want %d", len(found), n-1)
	}
	for i := 1; i < len(found); i++ {
		if kademlia.Closer(target, found[i].ID, found[i-1].ID) {
			t.Errorf("Lookup result not sorted by distance at %d", i)
		}
	}
}

// TestDHTOverTCP: nodes with a cluster secret over the real transport
// broadcast, reply and share records; a node with another secret cannot
// join.
func TestDHTOverTCP(t *testing.T) {
	secret, _ := p2p.ParseSecret(p2p.GenerateSecret())
	const n = 6
	c := startDHTCluster(t, n, func(int, *peer.Key) p2p.DHTConfig {
		return p2p.DHTConfig{ListenAddr: "127.0.0.1:0", Secret: secret}
	})
	ctx := context.Background()
	if err := c.nodes[0].Send(ctx, map[string]string{"hello": "tcp"}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < n; i++ {
		c.inboxes[i].waitFor(t, fmt.Sprintf("the broadcast at node %d", i), hasField("hello", "tcp"))
	}
	key, err := c.nodes[n-1].Put(ctx, "greeting", "hi")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := c.nodes[0].Get(ctx, key)
	if err != nil || string(rec.Value) != `"hi"` {
		t.Fatalf("Get over TCP: %v, %v", rec, err)
	}

	other, _ := p2p.ParseSecret(p2p.GenerateSecret())
	outsider, err := p2p.NewDHT(p2p.DHTConfig{
		ListenAddr: "127.0.0.1:0", Secret: other, Key: dhtKey(t, 100), DataDir: t.TempDir(),
		Bootstrap: []string{c.nodes[0].Addr()}, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer outsider.Close()
	joinCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := outsider.Bootstrap(joinCtx, []string{c.nodes[0].Addr()}); !errors.Is(err, kademlia.ErrNoContacts) {
		t.Errorf("Bootstrap with the wrong secret: %v, want ErrNoContacts", err)
	}
}

// TestDHTConfigAndClose: invalid configurations name the field; Close may be
// called twice, and methods of a closed node return ErrClosed.
func TestDHTConfigAndClose(t *testing.T) {
	for _, tc := range []struct {
		cfg   p2p.DHTConfig
		field string
	}{
		{p2p.DHTConfig{Secret: []byte("short")}, "Secret"},
		{p2p.DHTConfig{ReactorQueueLen: -1}, "ReactorQueueLen"},
		{p2p.DHTConfig{MaxMessageSize: -1}, "MaxMessageSize"},
		{p2p.DHTConfig{Kademlia: kademlia.Config{Alpha: -1}}, "Alpha"},
	} {
		tc.cfg.Key, tc.cfg.DataDir, tc.cfg.ListenAddr = dhtKey(t, 0), t.TempDir(), "127.0.0.1:0"
		if _, err := p2p.NewDHT(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("config with bad %s: %v", tc.field, err)
		}
	}

	dir := t.TempDir()
	d, err := p2p.NewDHT(p2p.DHTConfig{ListenAddr: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	id := d.ID()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := d.Send(ctx, "x"); !errors.Is(err, p2p.ErrClosed) {
		t.Errorf("Send after Close: %v", err)
	}
	if _, err := d.Get(ctx, id); !errors.Is(err, p2p.ErrClosed) {
		t.Errorf("Get after Close: %v", err)
	}
	if _, err := d.Members(ctx); !errors.Is(err, p2p.ErrClosed) {
		t.Errorf("Members after Close: %v", err)
	}
	// The key persists in DataDir: a restarted node has the same ID, and so
	// the same record keys.
	again, err := p2p.NewDHT(p2p.DHTConfig{ListenAddr: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if again.ID() != id {
		t.Errorf("restarted node has ID %s, want %s", again.ID().Short(), id.Short())
	}
	if err := again.SendOne(ctx, "x"); !errors.Is(err, p2p.ErrNoNeighbors) {
		t.Errorf("SendOne alone: %v, want ErrNoNeighbors", err)
	}
	if err := again.Send(ctx, strings.Repeat("x", kademlia.DefaultMaxPayloadSize)); !errors.Is(err, p2p.ErrTooLarge) {
		t.Errorf("Send of a large message: %v, want ErrTooLarge", err)
	}
}
