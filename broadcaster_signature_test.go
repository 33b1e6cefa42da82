package p2p_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/p2p-go/p2p"
	"github.com/p2p-go/p2p/internal/testutil"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/plumtree"
	"github.com/p2p-go/p2p/transport/tcp"
	"github.com/p2p-go/p2p/wire"
)

// Issue 10, row 4: an insider (a peer holding the cluster secret) sends a
// broadcast that names another member as its origin. Without signatures it
// is delivered with the forged From; with SignBroadcasts it is refused and
// counted, and genuine broadcasts still arrive, From proven.

// startSigningNode starts a node over TCP with SignBroadcasts set as given.
func startSigningNode(t *testing.T, secret []byte, sign bool, bootstrap ...string) (*p2p.Broadcaster, *inbox) {
	t.Helper()
	b, err := p2p.NewBroadcaster(p2p.Config{
		Bootstrap: bootstrap, ListenAddr: "127.0.0.1:0", DataDir: t.TempDir(),
		Secret: secret, Logger: testLogger(t), SignBroadcasts: sign,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	in := newInbox()
	b.React(in.react)
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return b, in
}

// forgeBroadcast connects to victim as an insider and sends it a GOSSIP that
// claims claimed as its origin, carrying the JSON body.
func forgeBroadcast(t *testing.T, secret []byte, victim, claimed *p2p.Broadcaster, body string) {
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
	var id plumtree.MessageID
	rand.Read(id[:])
	data, err := wire.Marshal(&plumtree.Gossip{
		ID: id, Round: 1, Origin: peer.Info{ID: claimed.ID(), Addr: claimed.Addr()},
		Payload: append([]byte{1}, body...), SentAt: time.Now().UnixMilli(), // topic 1: the application's
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Send(ctx, data); err != nil {
		t.Fatal(err)
	}
}

func TestForgedBroadcastOriginIsDeliveredWithoutSignatures(t *testing.T) {
	secret, err := p2p.ParseSecret(p2p.GenerateSecret())
	if err != nil {
		t.Fatal(err)
	}
	a, inA := startSigningNode(t, secret, false)
	c, _ := startSigningNode(t, secret, false, a.Addr())
	waitJoined(t, c)
	forgeBroadcast(t, secret, a, c, `{"forged":true}`)
	m := inA.waitFor(t, "the forged broadcast", hasField("forged", true))
	if m.From != c.ID() || m.Direct {
		t.Fatalf("forged broadcast delivered from %s (direct %v), want the claimed origin %s", m.From.Short(), m.Direct, c.ID().Short())
	}
}

func TestForgedBroadcastOriginIsRefusedWithSignBroadcasts(t *testing.T) {
	secret, err := p2p.ParseSecret(p2p.GenerateSecret())
	if err != nil {
		t.Fatal(err)
	}
	a, inA := startSigningNode(t, secret, true)
	c, _ := startSigningNode(t, secret, true, a.Addr())
	waitJoined(t, c)
	forgeBroadcast(t, secret, a, c, `{"forged":true}`)
	testutil.Eventually(t, 20*time.Second, "the forged broadcast to be refused", func() bool {
		return a.Stats().Plumtree.RefusedSignature >= 1
	})
	if err := c.Send(context.Background(), map[string]bool{"genuine": true}); err != nil {
		t.Fatal(err)
	}
	m := inA.waitFor(t, "the genuine broadcast", hasField("genuine", true))
	if m.From != c.ID() {
		t.Fatalf("genuine broadcast from %s, want %s", m.From.Short(), c.ID().Short())
	}
	if n := inA.count(hasField("forged", true)); n != 0 {
		t.Fatalf("the forged broadcast was delivered %d times", n)
	}
}
