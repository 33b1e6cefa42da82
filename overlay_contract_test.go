package p2p_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/p2p-go/p2p"
	"github.com/p2p-go/p2p/kv"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport"
	"github.com/p2p-go/p2p/transport/memnet"
)

// overlayKind builds one overlay of a kind for the contract test: a node on
// tr that joins through bootstrap (none: a new network).
type overlayKind struct {
	name string
	new  func(t *testing.T, key *peer.Key, tr transport.Transport, seed uint64, bootstrap []string) p2p.Overlay
}

var overlayKinds = []overlayKind{
	{"Broadcaster", func(t *testing.T, key *peer.Key, tr transport.Transport, seed uint64, bootstrap []string) p2p.Overlay {
		b, err := p2p.NewBroadcaster(p2p.Config{Key: key, Transport: tr, Bootstrap: bootstrap, Seed: seed, StoreBackend: kv.NewMemory(), Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}},
	{"DHT", func(t *testing.T, key *peer.Key, tr transport.Transport, seed uint64, bootstrap []string) p2p.Overlay {
		d, err := p2p.NewDHT(p2p.DHTConfig{Key: key, Transport: tr, Bootstrap: bootstrap, Seed: seed, DataDir: t.TempDir(), Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}},
}

// The Broadcaster and the DHT keep one contract (p2p.Overlay's doc): Start
// returns at once and Joined closes on both sides of a join; SendOne alone
// fails with ErrNoNeighbors; Send, SendOne and SendTo reach the other node;
// a message over the limit fails with ErrTooLarge; Close may be called twice
// and every method of a closed node fails with ErrClosed.
func TestOverlaysKeepOneContract(t *testing.T) {
	for _, kind := range overlayKinds {
		t.Run(kind.name, func(t *testing.T) {
			net := memnet.New(memnet.Config{Seed: 7})
			defer net.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var nodes []p2p.Overlay
			var inboxes []*inbox
			defer func() {
				for _, n := range nodes {
					n.Close()
				}
			}()
			for i := range 2 {
				key, err := peer.GenerateKey(nil)
				if err != nil {
					t.Fatal(err)
				}
				tr, err := net.Listen(key, []string{"node-a", "node-b"}[i])
				if err != nil {
					t.Fatal(err)
				}
				var bootstrap []string
				if i > 0 {
					bootstrap = []string{nodes[0].Addr()}
				}
				n := kind.new(t, key, tr, uint64(i+1), bootstrap)
				nodes = append(nodes, n)
				in := newInbox()
				n.React(in.react)
				inboxes = append(inboxes, in)
				if err := n.Start(ctx); err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					if err := n.SendOne(ctx, "alone"); !errors.Is(err, p2p.ErrNoNeighbors) {
						t.Fatalf("SendOne on a lone node: %v, want ErrNoNeighbors", err)
					}
				}
			}
			a, b := nodes[0], nodes[1]
			for i, n := range nodes {
				select {
				case <-n.Joined():
				case <-ctx.Done():
					t.Fatalf("node %d never joined", i)
				}
			}
			if err := a.Send(ctx, map[string]string{"kind": "send"}); err != nil {
				t.Fatal(err)
			}
			inboxes[1].waitFor(t, "the broadcast", hasField("kind", "send"))
			if err := a.SendOne(ctx, map[string]string{"kind": "one"}); err != nil {
				t.Fatal(err)
			}
			if m := inboxes[1].waitFor(t, "the SendOne", hasField("kind", "one")); !m.Direct || m.From != a.ID() {
				t.Fatalf("SendOne arrived as %+v", m)
			}
			if err := a.SendTo(ctx, p2p.Member{ID: b.ID(), Addr: b.Addr()}, map[string]string{"kind": "to"}); err != nil {
				t.Fatal(err)
			}
			inboxes[1].waitFor(t, "the SendTo", hasField("kind", "to"))
			if err := a.Send(ctx, strings.Repeat("x", 2<<20)); !errors.Is(err, p2p.ErrTooLarge) {
				t.Fatalf("Send of 2 MiB: %v, want ErrTooLarge", err)
			}
			if stats := b.NodeStats(); stats.InvalidJSON != 0 || stats.ReactorDrops != 0 {
				t.Fatalf("counters after valid messages: %+v", stats)
			}

			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			if err := a.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			closedCalls := map[string]error{
				"Start":   a.Start(ctx),
				"Send":    a.Send(ctx, "x"),
				"SendOne": a.SendOne(ctx, "x"),
				"SendTo":  a.SendTo(ctx, p2p.Member{ID: b.ID(), Addr: b.Addr()}, "x"),
			}
			_, closedCalls["Members"] = a.Members(ctx)
			_, closedCalls["Neighbors"] = a.Neighbors(ctx)
			for name, err := range closedCalls {
				if !errors.Is(err, p2p.ErrClosed) {
					t.Errorf("%s on a closed %s: %v, want ErrClosed", name, kind.name, err)
				}
			}
		})
	}
}
