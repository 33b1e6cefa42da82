package p2p_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/p2p-go/p2p"
	"github.com/p2p-go/p2p/internal/testutil"
	"github.com/p2p-go/p2p/kv"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/plumtree"
	"github.com/p2p-go/p2p/transport/tcp"
	"github.com/p2p-go/p2p/wire"
)

// sendGossip connects to victim as an insider (the cluster secret, a key of
// its own, the project's transport) and sends it the GOSSIPs gs.
func sendGossip(t *testing.T, secret []byte, victim *p2p.Broadcaster, gs ...plumtree.Gossip) {
	t.Helper()
	key, err := peer.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	insider, err := tcp.Listen(tcp.Config{ListenAddr: "127.0.0.1:0", Key: key, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	defer insider.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := insider.Dial(ctx, victim.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, g := range gs {
		data, err := wire.Marshal(&g)
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.Send(ctx, data); err != nil {
			t.Fatal(err)
		}
	}
}

// gossipFrom returns a GOSSIP of the application's topic claiming origin,
// carrying body, sent at sentAt (ms since the epoch) and round hops away.
func gossipFrom(origin *p2p.Broadcaster, body string, sentAt int64, round uint16) plumtree.Gossip {
	var id plumtree.MessageID
	rand.Read(id[:])
	return plumtree.Gossip{ID: id, Round: round, Origin: peer.Info{ID: origin.ID(), Addr: origin.Addr()},
		Payload: append([]byte{1}, body...), SentAt: sentAt}
}

// Issue 10, row 5, over TCP: an insider replays broadcasts dated after the
// duplicate filter forgot them (5 min 22 s ago, as in the issue, and other
// ages), and broadcasts dated far ahead. None is delivered; each is counted.
// A broadcast dated now, sent the same way after them, is delivered (the
// path works).
func TestInsiderReplaysAreRefusedOverTCP(t *testing.T) {
	secret, _ := p2p.ParseSecret(p2p.GenerateSecret())
	a, inA := startTCPNode(t, secret)
	c, _ := startTCPNode(t, secret, a.Addr())
	waitJoined(t, c)
	now := time.Now()
	stale := []time.Duration{5*time.Minute + 22*time.Second, 4*time.Minute + 31*time.Second, 24 * time.Hour, time.Duration(now.UnixNano())}
	future := []int64{now.Add(31 * time.Second).UnixMilli(), now.Add(24 * 365 * time.Hour).UnixMilli(), math.MaxInt64, math.MinInt64}
	var gs []plumtree.Gossip
	for i, age := range stale {
		gs = append(gs, gossipFrom(c, fmt.Sprintf(`{"replay":%d}`, i), now.Add(-age).UnixMilli(), 1))
	}
	for i, at := range future {
		gs = append(gs, gossipFrom(c, fmt.Sprintf(`{"replay":%d}`, 100+i), at, 1))
	}
	gs = append(gs, gossipFrom(c, `{"control":true}`, time.Now().UnixMilli(), 1))
	sendGossip(t, secret, a, gs...)
	inA.waitFor(t, "the broadcast dated now", hasField("control", true))
	st := a.Stats().Plumtree
	if st.RefusedStale < uint64(len(stale)) || st.RefusedStale+st.RefusedFuture < uint64(len(stale)+len(future)) {
		t.Fatalf("refused %d stale and %d future, want %d and %d in all", st.RefusedStale, st.RefusedFuture, len(stale), len(stale)+len(future))
	}
	if n := inA.count(func(m *p2p.Message) bool { var v map[string]any; return m.Decode(&v) == nil && v["replay"] != nil }); n != 0 {
		t.Fatalf("%d replayed or future broadcasts delivered", n)
	}
}

// Issue 10, row 8, over TCP: an insider sets a broadcast's hop count to
// 65,535 (and to 256): the node delivers it with its hop count clamped to
// plumtree.MaxHops and counts the clamp.
func TestInsiderHopCountsAreClampedOverTCP(t *testing.T) {
	secret, _ := p2p.ParseSecret(p2p.GenerateSecret())
	a, inA := startTCPNode(t, secret)
	c, _ := startTCPNode(t, secret, a.Addr())
	waitJoined(t, c)
	sendGossip(t, secret, a,
		gossipFrom(c, `{"hops":65535}`, time.Now().UnixMilli(), math.MaxUint16),
		gossipFrom(c, `{"hops":256}`, time.Now().UnixMilli(), plumtree.MaxHops+1))
	for _, hops := range []float64{65535, 256} {
		m := inA.waitFor(t, fmt.Sprint("the broadcast with ", hops, " hops"), hasField("hops", hops))
		if m.Hops > plumtree.MaxHops {
			t.Fatalf("delivered with %d hops, want at most %d", m.Hops, plumtree.MaxHops)
		}
	}
	if got := a.Stats().Plumtree.HopsClamped; got < 2 {
		t.Fatalf("HopsClamped = %d, want 2", got)
	}
}

// Issue 10, row 9, over TCP: an insider broadcasts store records it signed
// itself, dated an hour, ten years and as far as an int64 goes ahead. Every
// node holds them back and counts them; a record dated now, sent the same
// way, is applied everywhere.
func TestInsiderFutureRecordsAreCountedOverTCP(t *testing.T) {
	ctx := context.Background()
	secret, _ := p2p.ParseSecret(p2p.GenerateSecret())
	a := startKeyedTCPNode(t, secret, newKey(t), nil)
	b := startKeyedTCPNode(t, secret, newKey(t), nil, a.Addr())
	insiderKey := newKey(t)
	insider := startKeyedTCPNode(t, secret, insiderKey, nil, a.Addr())
	for _, n := range []*p2p.Broadcaster{b, insider} {
		waitJoined(t, n)
	}
	now := time.Now()
	var records []kv.Record
	for i, wall := range []int64{now.Add(time.Hour).UnixNano(), now.Add(10 * 365 * 24 * time.Hour).UnixNano(), math.MaxInt64} {
		records = append(records, kv.Record{Key: fmt.Sprint("config/future", i), Value: []byte("x"),
			Version: kv.Version{Time: kv.HLC{Wall: wall}, Writer: insider.ID()}}.Sign(insiderKey))
	}
	if err := p2p.SendStoreRecordsForTest(ctx, insider, records); err != nil {
		t.Fatal(err)
	}
	control := kv.Record{Key: "config/now", Value: []byte("ok"), Version: kv.Version{Time: kv.HLC{Wall: time.Now().UnixNano()}, Writer: insider.ID()}}.Sign(insiderKey)
	if err := p2p.SendStoreRecordsForTest(ctx, insider, []kv.Record{control}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*p2p.Broadcaster{a, b} {
		testutil.Eventually(t, 20*time.Second, "the record dated now", func() bool { return valueOf(n, "config/now") == "ok" })
		testutil.Eventually(t, 20*time.Second, "the future records to be counted", func() bool {
			return n.Stats().Store.RecordsDeferred >= uint64(len(records))
		})
		for i := range records {
			if got := valueOf(n, fmt.Sprint("config/future", i)); got != "" {
				t.Fatalf("future record %d applied: %q", i, got)
			}
		}
	}
}
