package tcp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/flynn/noise"

	"github.com/p2p-go/p2p/transport"
)

// recvAll receives n messages from conn, failing the test on an error.
func recvAll(t *testing.T, conn transport.Conn, n int) []string {
	t.Helper()
	var got []string
	for range n {
		msg, err := conn.Recv()
		if err != nil {
			t.Fatalf("Recv after %d messages: %v", len(got), err)
		}
		got = append(got, string(msg))
	}
	return got
}

func checkSequence(t *testing.T, got []string, n int) {
	t.Helper()
	for i := range n {
		if want := fmt.Sprint("message ", i); got[i] != want {
			t.Fatalf("message %d is %q, want %q", i, got[i], want)
		}
	}
}

// Messages queued with TrySendDeferred, TrySend and Send keep their order,
// and those left by TrySendDeferred leave at Flush, several in one write.
func TestDeferredSendsKeepOrderAndLeaveTogetherAtFlush(t *testing.T) {
	a, b := newTransport(t, nil), newTransport(t, nil)
	atA, atB := connect(t, a, b)
	conn := atA.(*Conn)
	writesBefore := a.Stats().Writes
	const n = 30
	for i := range n {
		msg := []byte(fmt.Sprint("message ", i))
		var err error
		switch {
		case i%10 == 9:
			err = conn.TrySend(msg)
		case i%10 == 4:
			err = conn.Send(testContext(t), msg)
		default:
			err = conn.TrySendDeferred(msg)
		}
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	conn.Flush()
	checkSequence(t, recvAll(t, atB, n), n)
	if writes := a.Stats().Writes - writesBefore; writes >= n {
		t.Fatalf("%d messages took %d writes: nothing was coalesced", n, writes)
	}
}

// Flush is what makes deferred messages leave: a deferred message waits
// until it, and arrives once it is called.
func TestDeferredSendWaitsForFlush(t *testing.T) {
	a, b := newTransport(t, nil), newTransport(t, nil)
	atA, atB := connect(t, a, b)
	conn := atA.(*Conn)
	if err := conn.TrySendDeferred([]byte("message 0")); err != nil {
		t.Fatal(err)
	}
	// Held back: the writer was not woken, so the bytes are still queued.
	conn.mu.Lock()
	pending := len(conn.pending)
	conn.mu.Unlock()
	if pending == 0 {
		t.Fatal("a deferred message was taken by the writer without Flush")
	}
	conn.Flush()
	checkSequence(t, recvAll(t, atB, 1), 1)
}

// Deferred messages that reach deferredWriteLimit leave without Flush.
func TestDeferredSendsLeaveWithoutFlushPastTheLimit(t *testing.T) {
	a, b := newTransport(t, nil), newTransport(t, nil)
	atA, atB := connect(t, a, b)
	conn := atA.(*Conn)
	pad := bytes.Repeat([]byte("x"), 1000)
	n := deferredWriteLimit/len(pad) + 2
	for i := range n {
		msg := append([]byte(fmt.Sprint("message ", i, " ")), pad...)
		if err := conn.TrySendDeferred(msg); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	// Without Flush, at least the messages up to the limit arrive.
	for i := range deferredWriteLimit / (len(pad) + 20) {
		msg, err := atB.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprint("message ", i, " "); !bytes.HasPrefix(msg, []byte(want)) {
			t.Fatalf("message %d starts with %q", i, msg[:len(want)])
		}
	}
}

// Close and CloseWrite write what TrySendDeferred queued: nothing waits
// for a Flush that will not come.
func TestCloseSendsDeferredMessages(t *testing.T) {
	for _, half := range []bool{false, true} {
		t.Run(fmt.Sprint("CloseWrite=", half), func(t *testing.T) {
			a, b := newTransport(t, nil), newTransport(t, nil)
			atA, atB := connect(t, a, b)
			conn := atA.(*Conn)
			const n = 5
			for i := range n {
				if err := conn.TrySendDeferred([]byte(fmt.Sprint("message ", i))); err != nil {
					t.Fatal(err)
				}
			}
			if half {
				conn.CloseWrite()
			} else {
				conn.Close()
			}
			checkSequence(t, recvAll(t, atB, n), n)
			if _, err := atB.Recv(); err == nil {
				t.Fatal("Recv returned a message after the last one")
			}
		})
	}
}

// A deferred send on a full buffer is refused with ErrWouldBlock, like
// TrySend, rather than waiting: a peer that does not read fills the
// sockets' buffers, then the connection's.
func TestDeferredSendOnAFullBufferWouldBlock(t *testing.T) {
	a, b := newTransport(t, nil), newTransport(t, nil)
	atA, _ := connect(t, a, b) // b never reads
	conn := atA.(*Conn)
	msg := make([]byte, 60<<10)
	var err error
	for sent := 0; sent < 256<<20; sent += len(msg) {
		if err = conn.TrySendDeferred(msg); err != nil {
			break
		}
	}
	if !errors.Is(err, transport.ErrWouldBlock) {
		t.Fatalf("TrySendDeferred to a peer that does not read: %v, want ErrWouldBlock", err)
	}
}

// buffered reports a message only once all of it has been read into the
// buffer.
func TestReaderBufferedSeesWholeMessagesOnly(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	seal := noise.UnsafeNewCipherState(cipherSuite, [32]byte(key), 0)
	var stream []byte
	for i := range 3 {
		var err error
		stream, err = appendMessage(stream, seal, []byte(fmt.Sprint("message ", i)))
		if err != nil {
			t.Fatal(err)
		}
	}
	one := encodedLen(len("message 0"))
	// All of the first two messages and part of the third arrive.
	cut := stream[:3*one-5]
	open := noise.UnsafeNewCipherState(cipherSuite, [32]byte(key), 0)
	m := newMessageReader(bufio.NewReader(bytes.NewReader(cut)), open, 1<<20)
	if m.buffered() {
		t.Fatal("buffered before anything was read")
	}
	for i := range 2 {
		msg, err := m.read()
		if err != nil || string(msg) != fmt.Sprint("message ", i) {
			t.Fatalf("read %d: %q, %v", i, msg, err)
		}
		if want := i == 0; m.buffered() != want {
			t.Fatalf("after message %d, buffered = %v, want %v", i, !want, want)
		}
	}
}

// Flush writes what the socket takes without waiting and leaves the rest
// to the writer: with a peer that reads late, nothing is lost, reordered
// or torn, however the socket's buffer cut the writes.
func TestFlushIntoAFullSocketLosesNothing(t *testing.T) {
	a, b := newTransport(t, nil), newTransport(t, nil)
	atA, atB := connect(t, a, b)
	conn := atA.(*Conn)
	pad := bytes.Repeat([]byte("y"), 10_000)
	sent := 0
	for ; sent < 10_000; sent++ {
		msg := append([]byte(fmt.Sprint("message ", sent, " ")), pad...)
		if err := conn.TrySendDeferred(msg); err != nil {
			if !errors.Is(err, transport.ErrWouldBlock) {
				t.Fatal(err)
			}
			break
		}
		conn.Flush()
	}
	if sent == 10_000 {
		t.Fatal("the buffers never filled")
	}
	for i := range sent {
		msg, err := atB.Recv()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		want := append([]byte(fmt.Sprint("message ", i, " ")), pad...)
		if !bytes.Equal(msg, want) {
			t.Fatalf("message %d differs", i)
		}
	}
}
