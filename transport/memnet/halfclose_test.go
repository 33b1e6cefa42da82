package memnet

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/p2p-go/p2p/transport"
)

// TestCloseWriteDeliversWhatWasSentThenTheEnd checks the half-close, as
// TCP's: the peer receives what was sent before CloseWrite, then the end of
// the stream; the half-closed end can no longer send but still receives.
func TestCloseWriteDeliversWhatWasSentThenTheEnd(t *testing.T) {
	n := testNet(t, Config{Latency: time.Millisecond})
	a, _ := node(t, n, "a")
	b, _ := node(t, n, "b")
	atA, atB := connect(t, a, b)
	send(t, atA, "one")
	send(t, atA, "two")
	if err := atA.(transport.HalfCloser).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := atA.Send(context.Background(), []byte("late")); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Send after CloseWrite: %v, want ErrClosed", err)
	}
	recv(t, atB, "one")
	recv(t, atB, "two")
	if _, err := atB.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv after the messages: %v, want io.EOF", err)
	}
	send(t, atB, "reply")
	recv(t, atA, "reply")
	atB.Close()
	if _, err := atA.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv once the peer closed: %v, want io.EOF", err)
	}
}
