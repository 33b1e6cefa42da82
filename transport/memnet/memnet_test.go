package memnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport"
	"github.com/p2p-go/p2p/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testNet builds a network closed at the end of the test.
func testNet(t *testing.T, cfg Config) *Network {
	t.Helper()
	n := New(cfg)
	t.Cleanup(func() { n.Close() })
	return n
}

// node listens at addr with a fresh key.
func node(t *testing.T, n *Network, addr string) (*Transport, *peer.Key) {
	t.Helper()
	key, err := peer.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := n.Listen(key, addr)
	if err != nil {
		t.Fatalf("Listen(%s): %v", addr, err)
	}
	return tr, key
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// connect dials b from a and accepts it at b.
func connect(t *testing.T, a, b *Transport) (atA, atB transport.Conn) {
	t.Helper()
	ctx := testContext(t)
	atA, err := a.Dial(ctx, b.LocalAddr())
	if err != nil {
		t.Fatalf("Dial %s -> %s: %v", a.LocalAddr(), b.LocalAddr(), err)
	}
	atB, err = b.Accept(ctx)
	if err != nil {
		t.Fatalf("Accept at %s: %v", b.LocalAddr(), err)
	}
	return atA, atB
}

func send(t *testing.T, c transport.Conn, msg string) {
	t.Helper()
	if err := c.Send(context.Background(), []byte(msg)); err != nil {
		t.Fatalf("Send(%q): %v", msg, err)
	}
}

func recv(t *testing.T, c transport.Conn, want string) {
	t.Helper()
	got, err := c.Recv()
	if err != nil || string(got) != want {
		t.Fatalf("Recv = %q, %v; want %q", got, err, want)
	}
}

// recvErr runs Recv with a deadline and returns its error.
func recvErr(t *testing.T, c transport.Conn) error {
	t.Helper()
	result := make(chan error, 1)
	go func() {
		_, err := c.Recv()
		result <- err
	}()
	select {
	case err := <-result:
		return err
	case <-time.After(10 * time.Second):
		c.Close()
		<-result
		t.Fatal("Recv did not return")
		return nil
	}
}

func TestMessagesFlowWithAuthenticatedRemote(t *testing.T) {
	n := testNet(t, Config{})
	a, keyA := node(t, n, "node-a")
	b, keyB := node(t, n, "node-b")
	atA, atB := connect(t, a, b)
	if got := atA.Remote(); got != (peer.Info{ID: keyB.ID(), Addr: "node-b"}) {
		t.Fatalf("a sees %v", got)
	}
	if got := atB.Remote(); got != (peer.Info{ID: keyA.ID(), Addr: "node-a"}) {
		t.Fatalf("b sees %v", got)
	}
	send(t, atA, "ping")
	recv(t, atB, "ping")
	send(t, atB, "pong")
	recv(t, atA, "pong")
	buf := []byte("reused")
	if err := atA.Send(context.Background(), buf); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXXX")
	recv(t, atB, "reused") // Send copies the message
	if s := n.Stats(); s.MessagesSent != 3 || s.MessagesDelivered != 3 || s.BytesSent != 14 || s.BytesDelivered != 14 || s.MessagesDropped != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestFIFOOrderUnderJitter(t *testing.T) {
	n := testNet(t, Config{Seed: 7, Latency: time.Millisecond, Jitter: 20 * time.Millisecond})
	a, _ := node(t, n, "a")
	b, _ := node(t, n, "b")
	atA, atB := connect(t, a, b)
	const count = 300
	for i := range count {
		send(t, atA, fmt.Sprint(i))
	}
	for i := range count {
		recv(t, atB, fmt.Sprint(i))
	}
}

func TestLatencyDelaysDelivery(t *testing.T) {
	const latency = 30 * time.Millisecond
	n := testNet(t, Config{Latency: latency})
	a, _ := node(t, n, "a")
	b, _ := node(t, n, "b")
	start := time.Now()
	atA, atB := connect(t, a, b)
	if elapsed := time.Since(start); elapsed < 2*latency {
		t.Fatalf("Dial took %v, want at least one round trip (%v)", elapsed, 2*latency)
	}
	start = time.Now()
	send(t, atA, "late")
	recv(t, atB, "late")
	if elapsed := time.Since(start); elapsed < latency {
		t.Fatalf("message arrived after %v, want at least %v", elapsed, latency)
	}
	n.SetLatency(0, 0)
	send(t, atA, "now")
	recv(t, atB, "now")
}

func TestLossDropsTheConfiguredShare(t *testing.T) {
	for _, rate := range []float64{0, 0.3, 1} {
		t.Run(fmt.Sprint(rate), func(t *testing.T) {
			n := testNet(t, Config{Seed: 42, Loss: rate})
			a, _ := node(t, n, "a")
			b, _ := node(t, n, "b")
			atA, atB := connect(t, a, b)
			const count = 2000
			for i := range count {
				send(t, atA, fmt.Sprint(i))
			}
			n.SetLoss(0)
			send(t, atA, "end")
			delivered := 0
			for {
				got, err := atB.Recv()
				if err != nil {
					t.Fatal(err)
				}
				if string(got) == "end" {
					break
				}
				delivered++
			}
			share := 1 - float64(delivered)/count
			if share < rate-0.05 || share > rate+0.05 {
				t.Fatalf("lost %.3f of the messages, want %.2f ± 0.05", share, rate)
			}
			if s := n.Stats(); s.MessagesDropped != uint64(count-delivered) || s.MessagesSent != count+1 {
				t.Fatalf("stats %+v after %d delivered", s, delivered)
			}
		})
	}
}

func TestPartitionBreaksConnectionsAcrossGroupsUntilHeal(t *testing.T) {
	n := testNet(t, Config{})
	a, _ := node(t, n, "a")
	b, _ := node(t, n, "b")
	c, _ := node(t, n, "c")
	abAtA, abAtB := connect(t, a, b)
	acAtA, acAtC := connect(t, a, c)
	send(t, acAtA, "lost in flight")

	n.Partition([]string{"a", "b"}, []string{"c"})

	send(t, abAtA, "same side")
	recv(t, abAtB, "same side")
	for _, end := range []transport.Conn{acAtA, acAtC} {
		if err := recvErr(t, end); !errors.Is(err, ErrConnReset) {
			t.Fatalf("Recv across the partition: %v, want ErrConnReset", err)
		}
		if err := end.Send(context.Background(), []byte("x")); !errors.Is(err, ErrConnReset) {
			t.Fatalf("Send across the partition: %v, want ErrConnReset", err)
		}
	}
	if _, err := c.Dial(testContext(t), "a"); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Dial across the partition: %v, want ErrUnreachable", err)
	}

	n.Heal()
	atC, atA := connect(t, c, a)
	send(t, atC, "healed")
	recv(t, atA, "healed")
	if s := n.Stats(); s.MessagesDropped != 1 {
		t.Fatalf("the message in flight across the cut should count as dropped: %+v", s)
	}
}

func TestPartitionPutsUnnamedAddressesTogether(t *testing.T) {
	n := testNet(t, Config{})
	a, _ := node(t, n, "a")
	node(t, n, "b")
	node(t, n, "c")
	n.Partition([]string{"c"})
	connect(t, a, mustTransport(t, n, "b"))
	if _, err := a.Dial(testContext(t), "c"); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Dial to the named group: %v, want ErrUnreachable", err)
	}
}

func mustTransport(t *testing.T, n *Network, addr string) *Transport {
	n.mu.Lock()
	defer n.mu.Unlock()
	tr := n.transports[addr]
	if tr == nil {
		t.Fatalf("no transport at %s", addr)
	}
	return tr
}

func TestIsolateCutsOneNodeOff(t *testing.T) {
	n := testNet(t, Config{})
	a, _ := node(t, n, "a")
	b, _ := node(t, n, "b")
	c, _ := node(t, n, "c")
	atA, _ := connect(t, a, b)
	bc, cb := connect(t, b, c)
	n.Isolate("a")
	if err := recvErr(t, atA); !errors.Is(err, ErrConnReset) {
		t.Fatalf("isolated node's Recv: %v, want ErrConnReset", err)
	}
	for _, dial := range []struct {
		from *Transport
		to   string
	}{{a, "b"}, {c, "a"}} {
		if _, err := dial.from.Dial(testContext(t), dial.to); !errors.Is(err, ErrUnreachable) {
			t.Fatalf("Dial %s -> %s while isolated: %v", dial.from.LocalAddr(), dial.to, err)
		}
	}
	send(t, bc, "others unaffected")
	recv(t, cb, "others unaffected")
	n.Heal()
	connect(t, a, b)
}

func TestKillIsACrash(t *testing.T) {
	n := testNet(t, Config{Latency: time.Millisecond})
	a, _ := node(t, n, "a")
	b, _ := node(t, n, "b")
	atA, atB := connect(t, a, b)
	send(t, atB, "never read")
	n.Kill("b")
	if err := recvErr(t, atA); !errors.Is(err, ErrConnReset) {
		t.Fatalf("peer of a crashed node: Recv %v, want ErrConnReset", err)
	}
	if err := recvErr(t, atB); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("crashed node's own Recv: %v, want ErrClosed", err)
	}
	if _, err := b.Accept(testContext(t)); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("crashed node's Accept: %v, want ErrClosed", err)
	}
	if _, err := a.Dial(testContext(t), "b"); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Dial to a crashed node: %v, want ErrUnreachable", err)
	}
	// A restarted node listens at the same address.
	restarted, _ := node(t, n, "b")
	connect(t, a, restarted)
}

func TestGracefulCloseDeliversInFlightThenEOF(t *testing.T) {
	n := testNet(t, Config{Latency: 5 * time.Millisecond, Jitter: 5 * time.Millisecond})
	a, _ := node(t, n, "a")
	b, _ := node(t, n, "b")
	atA, atB := connect(t, a, b)
	for i := range 20 {
		send(t, atA, fmt.Sprint(i))
	}
	atA.Close()
	atA.Close()
	for i := range 20 {
		recv(t, atB, fmt.Sprint(i))
	}
	if err := recvErr(t, atB); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv after the peer closed: %v, want io.EOF", err)
	}
	if err := atB.Send(context.Background(), []byte("x")); !errors.Is(err, ErrConnReset) {
		t.Fatalf("Send to a closed peer: %v, want ErrConnReset", err)
	}
	if err := atA.Send(context.Background(), []byte("x")); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Send after Close: %v, want ErrClosed", err)
	}
}

func TestCloseUnblocksRecvAndAccept(t *testing.T) {
	n := testNet(t, Config{})
	a, _ := node(t, n, "a")
	b, _ := node(t, n, "b")
	atA, _ := connect(t, a, b)
	errs := make(chan error, 2)
	go func() { _, err := atA.Recv(); errs <- err }()
	go func() { _, err := b.Accept(context.Background()); errs <- err }()
	atA.Close()
	b.Close()
	b.Close()
	for range 2 {
		if err := <-errs; !errors.Is(err, transport.ErrClosed) {
			t.Fatalf("blocked call returned %v, want ErrClosed", err)
		}
	}
	if _, err := a.Dial(testContext(t), "b"); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Dial to a closed node: %v", err)
	}
}

func TestHookSeesEveryMessageAndMayDrop(t *testing.T) {
	n := testNet(t, Config{})
	a, _ := node(t, n, "a")
	b, _ := node(t, n, "b")
	atA, atB := connect(t, a, b)
	var mu sync.Mutex
	var seen []string
	n.SetHook(func(from, to string, msg []byte) bool {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, from+">"+to+":"+string(msg))
		return !strings.HasPrefix(string(msg), "drop")
	})
	send(t, atA, "drop me")
	send(t, atA, "keep me")
	send(t, atB, "back")
	recv(t, atB, "keep me")
	recv(t, atA, "back")
	n.SetHook(nil)
	send(t, atA, "drop, but no hook")
	recv(t, atB, "drop, but no hook")
	mu.Lock()
	defer mu.Unlock()
	if want := "a>b:drop me|a>b:keep me|b>a:back"; strings.Join(seen, "|") != want {
		t.Fatalf("hook saw %q, want %q", strings.Join(seen, "|"), want)
	}
	if got := n.Stats().MessagesDropped; got != 1 {
		t.Fatalf("MessagesDropped = %d, want 1", got)
	}
}

func TestMaxFrameSize(t *testing.T) {
	n := testNet(t, Config{})
	a, _ := node(t, n, "a")
	b, _ := node(t, n, "b")
	atA, atB := connect(t, a, b)
	if err := atA.Send(context.Background(), make([]byte, wire.DefaultMaxFrameSize)); err != nil {
		t.Fatalf("Send of exactly the limit: %v", err)
	}
	if err := atA.Send(context.Background(), make([]byte, wire.DefaultMaxFrameSize+1)); !errors.Is(err, transport.ErrTooLarge) {
		t.Fatalf("Send over the limit: %v, want ErrTooLarge", err)
	}
	if got, err := atB.Recv(); err != nil || len(got) != wire.DefaultMaxFrameSize {
		t.Fatalf("Recv: %d bytes, %v", len(got), err)
	}
}

func TestListenAndConfigErrors(t *testing.T) {
	n := testNet(t, Config{})
	node(t, n, "taken")
	key, _ := peer.GenerateKey(nil)
	if _, err := n.Listen(key, "taken"); err == nil {
		t.Fatal("Listen on an address in use succeeded")
	}
	if _, err := n.Listen(nil, "x"); err == nil {
		t.Fatal("Listen without a key succeeded")
	}
	n.Close()
	if _, err := n.Listen(key, "after"); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Listen on a closed network: %v", err)
	}
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{Latency: -1}, "Latency"},
		{Config{Jitter: -1}, "Jitter"},
		{Config{Loss: 1.5}, "Loss"},
		{Config{MaxFrameSize: -1}, "MaxFrameSize"},
	} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), tc.field) {
					t.Errorf("New(%+v) panicked with %v, want a message naming %s", tc.cfg, r, tc.field)
				}
			}()
			New(tc.cfg)
		}()
	}
}
