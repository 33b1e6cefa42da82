package tcp

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/p2p-go/p2p/internal/testutil"
	"github.com/p2p-go/p2p/transport"
)

// acceptAndRead accepts every inbound connection of server and reads it
// until it fails, as a node does; it returns the messages read.
func acceptAndRead(t *testing.T, server *Transport) <-chan []byte {
	t.Helper()
	ctx := testContext(t)
	got := make(chan []byte, 100)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := server.Accept(ctx)
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				for {
					msg, err := conn.Recv()
					if err != nil {
						return
					}
					got <- msg
				}
			})
		}
	})
	t.Cleanup(func() { server.Close(); wg.Wait() })
	return got
}

// sendTruncated writes to conn a message of size bytes, encrypted and
// framed as Send does, without its last byte: the peer buffers it and
// waits for the byte that never comes.
func sendTruncated(t *testing.T, conn transport.Conn, size int) {
	t.Helper()
	c := conn.(*Conn)
	c.mu.Lock()
	frame, err := appendMessage(nil, c.sendCipher, make([]byte, size))
	c.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.raw.Write(frame[:len(frame)-1]); err != nil {
		t.Fatal(err)
	}
}

func dialOnly(t *testing.T, client, server *Transport) (transport.Conn, error) {
	t.Helper()
	conn, err := client.Dial(testContext(t), server.ListenAddr().String())
	if err == nil {
		t.Cleanup(func() { conn.Close() })
	}
	return conn, err
}

func TestConnectionsPerPeerAreCapped(t *testing.T) {
	server := newTransport(t, func(cfg *Config) { cfg.MaxConnsPerPeer = 2 })
	acceptAndRead(t, server)
	client := newTransport(t, nil)
	for range 3 {
		if _, err := dialOnly(t, client, server); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 10*time.Second, "the third connection to be refused", func() bool { return server.Stats().ConnsOverPeerLimit == 1 })
	// The client's own cap refuses a dial beyond it with ErrConnLimit.
	capped := newTransport(t, func(cfg *Config) { cfg.MaxConnsPerPeer = 1 })
	if _, err := dialOnly(t, capped, server); err != nil {
		t.Fatal(err)
	}
	if _, err := dialOnly(t, capped, server); !errors.Is(err, ErrConnLimit) {
		t.Fatalf("second dial with MaxConnsPerPeer 1: %v, want ErrConnLimit", err)
	}
	if s := capped.Stats(); s.ConnsOverPeerLimit != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestOpenConnectionsAreCapped(t *testing.T) {
	server := newTransport(t, func(cfg *Config) { cfg.MaxConns = 2 })
	acceptAndRead(t, server)
	for range 2 {
		if _, err := dialOnly(t, newTransport(t, nil), server); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 10*time.Second, "two connections to be open", func() bool { return server.openConns() == 2 })
	if _, err := dialOnly(t, newTransport(t, nil), server); err == nil {
		t.Fatal("a third connection was accepted beyond MaxConns 2")
	}
	testutil.Eventually(t, 10*time.Second, "the refusal to be counted", func() bool { return server.Stats().ConnsOverLimit == 1 })
	if s := server.Stats(); s.HandshakesRefused != 0 {
		t.Fatalf("an over-cap connection counted as a handshake refusal: %+v", s)
	}
}

// Issue 10, row 6, in miniature: peers holding the cluster secret send
// 1 MiB messages short by one byte on many connections. What the server
// buffers stays within MaxBufferedBytes (plus a first chunk per
// connection): the messages beyond it wait without being read, and when
// FrameTimeout passes every one of those connections is closed and counted
// (as over the buffer limit, or as timed out); small messages flow
// meanwhile.
func TestIncompleteMessagesAreBoundedInTotal(t *testing.T) {
	const budget = 3 << 20
	server := newTransport(t, func(cfg *Config) {
		cfg.MaxBufferedBytes = budget
		cfg.FrameTimeout = time.Second
		cfg.Logger = nil
	})
	got := acceptAndRead(t, server)
	for range 10 {
		conn, err := dialOnly(t, newTransport(t, func(cfg *Config) { cfg.Logger = nil }), server)
		if err != nil {
			t.Fatal(err)
		}
		sendTruncated(t, conn, 1<<20)
	}
	// Three messages fit in 3 MiB beyond their first chunks; they hold it.
	testutil.Eventually(t, 10*time.Second, "three messages to take the budget", func() bool { return server.buffered.InUse() > 2<<20 })
	if used := server.buffered.InUse(); used > budget {
		t.Fatalf("%d bytes buffered, limit %d", used, budget)
	}
	small, err := dialOnly(t, newTransport(t, nil), server)
	if err != nil {
		t.Fatal(err)
	}
	if err := small.Send(testContext(t), []byte("small")); err != nil {
		t.Fatal(err)
	}
	select {
	case msg := <-got:
		if string(msg) != "small" {
			t.Fatalf("got %q", msg)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a small message did not get through while the budget was taken")
	}
	testutil.Eventually(t, 10*time.Second, "every truncated message's connection to be closed", func() bool {
		s := server.Stats()
		return s.ConnsOverBufferLimit+s.FrameTimeouts == 10
	})
	// Which of the two reasons each counts under depends on timing: a
	// message that got the budget when another's time ran out then ran out
	// of time itself.
	if s := server.Stats(); s.FrameTimeouts < 3 {
		t.Fatalf("stats %+v, want at least the 3 messages holding the budget timed out", s)
	}
	testutil.Eventually(t, 10*time.Second, "the budget to be released", func() bool { return server.buffered.InUse() == 0 })
}

// A large message that finds the budget taken waits for it (TCP pushes back
// on its sender) and arrives once other messages release it.
func TestLargeMessageWaitsForTheBudget(t *testing.T) {
	server := newTransport(t, func(cfg *Config) { cfg.MaxBufferedBytes = 3 << 19; cfg.Logger = nil })
	got := acceptAndRead(t, server)
	holder, err := dialOnly(t, newTransport(t, func(cfg *Config) { cfg.Logger = nil }), server)
	if err != nil {
		t.Fatal(err)
	}
	sendTruncated(t, holder, 1<<20) // holds about 0.94 MiB of the 1.5
	testutil.Eventually(t, 10*time.Second, "the first message to take the budget", func() bool { return server.buffered.InUse() > 0 })
	large, err := dialOnly(t, newTransport(t, nil), server)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 1<<20)
	want[len(want)-1] = 42
	if err := large.Send(testContext(t), want); err != nil {
		t.Fatal(err)
	}
	holder.Close() // releases the budget
	select {
	case msg := <-got:
		if len(msg) != len(want) || msg[len(msg)-1] != 42 {
			t.Fatalf("got %d bytes", len(msg))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the large message never arrived")
	}
	if s := server.Stats(); s.ConnsOverBufferLimit != 0 {
		t.Fatalf("stats %+v: the waiting message's connection was closed", s)
	}
}

func TestSlowMessageIsCutAtFrameTimeout(t *testing.T) {
	server := newTransport(t, func(cfg *Config) { cfg.FrameTimeout = 200 * time.Millisecond })
	got := acceptAndRead(t, server)
	idle, err := dialOnly(t, newTransport(t, nil), server)
	if err != nil {
		t.Fatal(err)
	}
	slow, err := dialOnly(t, newTransport(t, nil), server)
	if err != nil {
		t.Fatal(err)
	}
	sendTruncated(t, slow, 100)
	testutil.Eventually(t, 10*time.Second, "the slow message to be cut", func() bool { return server.Stats().FrameTimeouts == 1 })
	testutil.Eventually(t, 10*time.Second, "the budget to be released", func() bool { return server.buffered.InUse() == 0 })
	// The idle connection (no message under way) outlived FrameTimeout and
	// still works.
	if err := idle.Send(testContext(t), []byte("still here")); err != nil {
		t.Fatal(err)
	}
	select {
	case msg := <-got:
		if string(msg) != "still here" {
			t.Fatalf("got %q", msg)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the idle connection was cut")
	}
	if s := server.Stats(); s.FrameTimeouts != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// CloseWrite closes only the sending side: what the peer sends until it
// sees the end still arrives, so that a runtime closing an idle connection
// loses no request crossing the close.
func TestCloseWriteKeepsReceivingUntilThePeerCloses(t *testing.T) {
	a := newTransport(t, nil)
	b := newTransport(t, nil)
	atA, atB := connect(t, a, b)
	if err := atA.Send(testContext(t), []byte("last from a")); err != nil {
		t.Fatal(err)
	}
	if err := atA.(transport.HalfCloser).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := atA.Send(testContext(t), []byte("too late")); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Send after CloseWrite: %v, want ErrClosed", err)
	}
	// b, not yet aware, sends a request that crosses the close.
	if err := atB.Send(testContext(t), []byte("crossing")); err != nil {
		t.Fatal(err)
	}
	if got, err := atB.Recv(); err != nil || string(got) != "last from a" {
		t.Fatalf("b Recv = %q, %v", got, err)
	}
	if _, err := atB.Recv(); err == nil {
		t.Fatal("b did not see the end of a's side")
	}
	if got, err := atA.Recv(); err != nil || string(got) != "crossing" {
		t.Fatalf("a Recv after CloseWrite = %q, %v; the crossing message was lost", got, err)
	}
	if _, err := atA.Recv(); err == nil {
		t.Fatal("a did not see b close")
	}
}

// A message handed to the receiver keeps its share of the budget until the
// receiver asks for the next one (or closes), so that messages received but
// not yet consumed count too.
func TestReceivedMessageKeepsItsBudgetUntilTheNextRecv(t *testing.T) {
	a := newTransport(t, nil)
	b := newTransport(t, nil)
	atA, atB := connect(t, a, b)
	if err := atA.Send(testContext(t), make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if _, err := atB.Recv(); err != nil {
		t.Fatal(err)
	}
	if used := b.buffered.InUse(); used < 1<<19 {
		t.Fatalf("%d bytes reserved while the receiver holds a 1 MiB message", used)
	}
	atB.Close() // as a Recv would, so does Close
	if used := b.buffered.InUse(); used != 0 {
		t.Fatalf("%d bytes still reserved after Close", used)
	}
}
