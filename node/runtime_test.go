package node

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/p2p-go/p2p/internal/testutil"
	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport/memnet"
	"github.com/p2p-go/p2p/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// ping is the test core's only message.
type ping struct {
	_    struct{} `cbor:",toarray"`
	Text string
}

func init() {
	wire.ClaimRange(0x7e, "node tests")
	wire.Register(0x7e01, (*ping)(nil))
}

// echoCore records what it receives and sends what it is asked to.
type echoCore struct {
	mu        sync.Mutex // guards received and linkDowns, read by the test
	received  []string
	linkDowns []overlay.LinkDown
	outputs   []any
	asked     int // sendRequests stepped
}

type sendRequest struct {
	to   peer.Info
	text string
}

func (c *echoCore) Step(now time.Time, input any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch in := input.(type) {
	case overlay.Received:
		if p, ok := in.Msg.(*ping); ok {
			c.received = append(c.received, p.Text)
		}
	case overlay.LinkDown:
		c.linkDowns = append(c.linkDowns, in)
	case sendRequest:
		c.asked++
		c.outputs = append(c.outputs, overlay.Send{To: in.to, Msg: &ping{Text: in.text}})
	case overlay.Connect:
		c.outputs = append(c.outputs, in)
	}
}

func (c *echoCore) Drain(dst []any) []any {
	dst = append(dst, c.outputs...)
	c.outputs = c.outputs[:0]
	return dst
}

func (c *echoCore) NextDeadline() (time.Time, bool) { return time.Time{}, false }

func (c *echoCore) snapshot() ([]string, []overlay.LinkDown) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.received...), append([]overlay.LinkDown(nil), c.linkDowns...)
}

func startNode(t *testing.T, net *memnet.Network, addr string) (*Runtime, *echoCore, peer.Info) {
	t.Helper()
	key, err := peer.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := net.Listen(key, addr)
	if err != nil {
		t.Fatal(err)
	}
	core := &echoCore{}
	rt, err := Start(Config{Core: core, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt, core, peer.Info{ID: key.ID(), Addr: addr}
}

// TestSendDialsOnDemandAndDeliversInOrder checks the runtime's links: a Send
// to a peer without a connection dials it, by ID or by address alone, and
// messages arrive in order.
func TestSendDialsOnDemandAndDeliversInOrder(t *testing.T) {
	net := memnet.New(memnet.Config{Seed: 1})
	defer net.Close()
	a, _, _ := startNode(t, net, "a")
	_, coreB, infoB := startNode(t, net, "b")
	ctx := context.Background()
	for _, text := range []string{"one", "two", "three"} {
		if err := a.Step(ctx, sendRequest{to: infoB, text: text}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Step(ctx, sendRequest{to: peer.Info{Addr: "b"}, text: "by address"}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "four messages at b", func() bool { got, _ := coreB.snapshot(); return len(got) == 4 })
	got, _ := coreB.snapshot()
	for i, want := range []string{"one", "two", "three", "by address"} {
		if got[i] != want {
			t.Fatalf("message %d = %q, want %q (all: %v)", i, got[i], want, got)
		}
	}
	if st := a.Stats(); st.Dials != 1 || st.MessagesOut != 4 {
		t.Fatalf("stats: %+v, want one dial and four messages out", st)
	}
}

// TestUnreachablePeerReportsLinkDown checks that a failed dial comes back to
// the core as a LinkDown naming the peer and the address.
func TestUnreachablePeerReportsLinkDown(t *testing.T) {
	net := memnet.New(memnet.Config{Seed: 2})
	defer net.Close()
	a, coreA, _ := startNode(t, net, "a")
	ghost := peer.Info{ID: peer.ID{7}, Addr: "nobody"}
	if err := a.Step(context.Background(), sendRequest{to: ghost, text: "hello?"}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "a LinkDown", func() bool { _, downs := coreA.snapshot(); return len(downs) == 1 })
	_, downs := coreA.snapshot()
	if downs[0].Peer != ghost.ID || downs[0].Addr != "nobody" || downs[0].Err == nil {
		t.Fatalf("LinkDown = %+v", downs[0])
	}
}

// TestMalformedFrameDisconnectsOnlyThatPeer checks that bytes that are not a
// message make the runtime drop the connection, count it and keep serving
// other peers.
func TestMalformedFrameDisconnectsOnlyThatPeer(t *testing.T) {
	net := memnet.New(memnet.Config{Seed: 3})
	defer net.Close()
	b, coreB, infoB := startNode(t, net, "b")
	a, _, _ := startNode(t, net, "a")

	key, _ := peer.GenerateKey(nil)
	evilTr, err := net.Listen(key, "evil")
	if err != nil {
		t.Fatal(err)
	}
	defer evilTr.Close()
	evil, err := evilTr.Dial(context.Background(), "b")
	if err != nil {
		t.Fatal(err)
	}
	for _, garbage := range [][]byte{{0xff, 0x00}, {0x82, 0x19, 0x7e, 0x01, 0x63}} {
		_ = evil.Send(context.Background(), garbage)
	}
	testutil.Eventually(t, 10*time.Second, "the malformed frame to be counted", func() bool { return b.Stats().MalformedIn >= 1 })
	if _, err := evil.Recv(); err == nil {
		t.Fatal("the connection that sent garbage is still open")
	}
	if err := a.Step(context.Background(), sendRequest{to: infoB, text: "still here"}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "a's message at b", func() bool { got, _ := coreB.snapshot(); return len(got) == 1 && got[0] == "still here" })
}

// TestCloseIsIdempotentAndStopsEverything checks Close twice and methods
// after Close (goleak in TestMain checks that no goroutine is left).
func TestCloseIsIdempotentAndStopsEverything(t *testing.T) {
	net := memnet.New(memnet.Config{Seed: 4})
	defer net.Close()
	a, _, _ := startNode(t, net, "a")
	_, _, infoB := startNode(t, net, "b")
	if err := a.Step(context.Background(), sendRequest{to: infoB, text: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := a.Step(context.Background(), sendRequest{to: infoB, text: "y"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Step after Close: %v, want ErrClosed", err)
	}
}
