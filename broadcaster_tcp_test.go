package p2p_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/p2p-go/p2p"
	"github.com/p2p-go/p2p/internal/testutil"
	"github.com/p2p-go/p2p/peer"
)

// inbox collects the messages a node's reactor receives.
type inbox struct {
	mu     sync.Mutex
	msgs   []*p2p.Message
	signal chan struct{}
}

func newInbox() *inbox { return &inbox{signal: make(chan struct{}, 1)} }

func (in *inbox) react(m *p2p.Message) {
	in.mu.Lock()
	in.msgs = append(in.msgs, m)
	in.mu.Unlock()
	select {
	case in.signal <- struct{}{}:
	default:
	}
}

// waitFor waits until a received message satisfies match and returns it.
func (in *inbox) waitFor(t *testing.T, what string, match func(*p2p.Message) bool) *p2p.Message {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		in.mu.Lock()
		for _, m := range in.msgs {
			if match(m) {
				in.mu.Unlock()
				return m
			}
		}
		in.mu.Unlock()
		select {
		case <-in.signal:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (in *inbox) count(match func(*p2p.Message) bool) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := 0
	for _, m := range in.msgs {
		if match(m) {
			n++
		}
	}
	return n
}

func hasField(key string, want any) func(*p2p.Message) bool {
	return func(m *p2p.Message) bool {
		var v map[string]any
		if m.Decode(&v) != nil {
			return false
		}
		got, _ := json.Marshal(v[key])
		w, _ := json.Marshal(want)
		return string(got) == string(w)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func startTCPNode(t *testing.T, secret []byte, bootstrap ...string) (*p2p.Broadcaster, *inbox) {
	t.Helper()
	b, err := p2p.NewBroadcaster(p2p.Config{
		Bootstrap:  bootstrap,
		ListenAddr: "127.0.0.1:0",
		DataDir:    t.TempDir(),
		Secret:     secret,
		Logger:     testLogger(t),
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

func waitJoined(t *testing.T, b *p2p.Broadcaster) {
	t.Helper()
	select {
	case <-b.Joined():
	case <-time.After(20 * time.Second):
		t.Fatalf("node %s never joined", b.ID().Short())
	}
}

// TestBroadcasterOverTCP runs the original README's flow between three nodes
// over the real encrypted transport: Send reaches everybody, SendOne reaches a
// neighbour, and Reply goes straight back to the original sender.
func TestBroadcasterOverTCP(t *testing.T) {
	ctx := context.Background()
	secret, _ := p2p.ParseSecret(p2p.GenerateSecret())
	a, inA := startTCPNode(t, secret)
	b, inB := startTCPNode(t, secret, a.Addr())
	c, inC := startTCPNode(t, secret, b.Addr())
	t.Cleanup(func() {
		if t.Failed() { // before the nodes close: cleanups run last first
			for _, n := range []*p2p.Broadcaster{a, b, c} {
				t.Log(p2p.DumpForTest(n))
			}
		}
	})
	waitJoined(t, b)
	waitJoined(t, c)

	// Answer "hi" with the token, as the README's reactor does.
	for _, n := range []*p2p.Broadcaster{a, b, c} {
		n.React(func(m *p2p.Message) {
			if hasField("hi", true)(m) {
				if err := m.Reply(ctx, map[string]any{"update": true, "token": 3, "by": n.ID()}); err != nil {
					t.Errorf("%s replying to %s (direct=%v): %v", n.ID().Short(), m.From.Short(), m.Direct, err)
				}
			}
		})
	}
	if err := b.SendOne(ctx, map[string]any{"hi": true}); err != nil {
		t.Fatal(err)
	}
	reply := inB.waitFor(t, "reply to hi", hasField("token", 3))
	var body struct{ By peer.ID }
	if err := reply.Decode(&body); err != nil {
		t.Fatal(err)
	}
	if !reply.Direct || reply.From != body.By || (body.By != a.ID() && body.By != c.ID()) {
		t.Fatalf("reply: direct=%v from=%s by=%s, want direct from a neighbour of b", reply.Direct, reply.From.Short(), body.By.Short())
	}
	// The reply can overtake the inbox reactor of the node that answered
	// (each reactor has its own queue): wait for that reactor too.
	hi := func() int { return inA.count(hasField("hi", true)) + inC.count(hasField("hi", true)) }
	testutil.Eventually(t, 20*time.Second, "the neighbour's inbox to record hi", func() bool { return hi() > 0 })
	if n := hi(); n != 1 {
		t.Fatalf("SendOne reached %d nodes, want 1", n)
	}

	if err := c.Send(ctx, map[string]any{"update": true, "token": 4}); err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string]*inbox{"a": inA, "b": inB} {
		m := in.waitFor(t, name+" receiving the update", hasField("token", 4))
		if m.Direct || m.From != c.ID() {
			t.Fatalf("%s: broadcast direct=%v from=%s, want from %s", name, m.Direct, m.From.Short(), c.ID().Short())
		}
	}
	if n := inC.count(hasField("token", 4)); n != 0 {
		t.Fatalf("sender received its own broadcast %d times", n)
	}
}

// TestNonJSONMessageIsDroppedNotDelivered sends a message whose data is not
// JSON, as only a modified peer could, straight through the overlay core:
// reactors never see it, and the node counts it.
func TestNonJSONMessageIsDroppedNotDelivered(t *testing.T) {
	ctx := context.Background()
	a, inA := startTCPNode(t, nil)
	b, _ := startTCPNode(t, nil, a.Addr())
	waitJoined(t, b)
	if err := p2p.SendRawForTest(ctx, b, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(ctx, map[string]int{"after": 1}); err != nil {
		t.Fatal(err)
	}
	inA.waitFor(t, "the valid message", hasField("after", 1))
	testutil.Eventually(t, 10*time.Second, "the invalid message to be counted", func() bool { return a.Stats().InvalidJSON == 1 })
	if n := inA.count(func(*p2p.Message) bool { return true }); n != 1 {
		t.Fatalf("reactor saw %d messages, want only the valid one", n)
	}
}
