package tcp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/p2p-go/p2p/internal/testutil"
	"github.com/p2p-go/p2p/transport"
	"github.com/p2p-go/p2p/wire"
)

func TestMessagesFlowBothWaysInOrder(t *testing.T) {
	a := newTransport(t, nil)
	b := newTransport(t, nil)
	atA, atB := connect(t, a, b)
	ctx := testContext(t)
	sizes := []int{0, 1, 255, 256, 4096, maxChunkPlain - 1, maxChunkPlain, maxChunkPlain + 1, 3*maxChunkPlain + 7}
	message := func(from string, i, size int) []byte {
		msg := bytes.Repeat([]byte{byte(i)}, size)
		if size >= len(from) {
			copy(msg, from)
		}
		return msg
	}
	for _, dir := range []struct {
		name     string
		from, to transport.Conn
	}{{"a-to-b", atA, atB}, {"b-to-a", atB, atA}} {
		t.Run(dir.name, func(t *testing.T) {
			go func() {
				for i, size := range sizes {
					if err := dir.from.Send(ctx, message(dir.name, i, size)); err != nil {
						t.Errorf("Send(%d bytes): %v", size, err)
					}
				}
			}()
			for i, size := range sizes {
				got, err := dir.to.Recv()
				if err != nil {
					t.Fatalf("Recv #%d: %v", i, err)
				}
				if want := message(dir.name, i, size); !bytes.Equal(got, want) {
					t.Fatalf("message #%d: got %d bytes, want %d bytes %x...", i, len(got), len(want), want[:min(8, len(want))])
				}
			}
		})
	}
	testutil.Eventually(t, 10*time.Second, "frame counters", func() bool {
		return a.Stats().FramesOut == uint64(len(sizes)) && b.Stats().FramesIn == uint64(len(sizes)) &&
			b.Stats().FramesOut == uint64(len(sizes)) && a.Stats().FramesIn == uint64(len(sizes))
	})
}

func TestSmallMessageOverheadIsLengthPlusTag(t *testing.T) {
	a := newTransport(t, nil)
	b := newTransport(t, nil)
	atA, atB := connect(t, a, b)
	testutil.Eventually(t, 10*time.Second, "handshake bytes settle", func() bool { return a.Stats().BytesOut == b.Stats().BytesIn })
	before := a.Stats().BytesOut
	const count, size = 100, 256
	for i := range count {
		if err := atA.Send(testContext(t), make([]byte, size)); err != nil {
			t.Fatalf("Send #%d: %v", i, err)
		}
	}
	for range count {
		if _, err := atB.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	// The writer counts its bytes just after the system call returns, so
	// the counters may lag the data that already arrived.
	want := before + uint64(count*(size+lengthLen+tagLen))
	testutil.Eventually(t, 10*time.Second, "the writer to count its bytes", func() bool { return a.Stats().BytesOut >= want })
	if sent := a.Stats().BytesOut - before; sent != want-before {
		t.Fatalf("%d messages of %d bytes cost %d bytes on the wire, want %d (20 bytes each of framing)", count, size, sent, want-before)
	}
	if got := b.Stats().BytesIn; got != want {
		t.Fatalf("b read %d bytes, a wrote %d", got, want)
	}
}

func TestRemoteReportsAuthenticatedIDAndAdvertisedAddr(t *testing.T) {
	a := newTransport(t, nil)
	b := newTransport(t, func(cfg *Config) { cfg.AdvertiseAddr = "node-b.example:7000" })
	if got := b.LocalAddr(); got != "node-b.example:7000" {
		t.Fatalf("b.LocalAddr() = %q, want the advertised address", got)
	}
	if got, want := a.LocalAddr(), a.ListenAddr().String(); got != want {
		t.Fatalf("a.LocalAddr() = %q, want the listen address %q by default", got, want)
	}
	atA, atB := connect(t, a, b)
	if got := atA.Remote(); got.ID != b.cfg.Key.ID() || got.Addr != "node-b.example:7000" {
		t.Fatalf("a sees %v, want %s@node-b.example:7000", got, b.cfg.Key.ID().Short())
	}
	if got := atB.Remote(); got.ID != a.cfg.Key.ID() || got.Addr != a.LocalAddr() {
		t.Fatalf("b sees %v, want %s@%s", got, a.cfg.Key.ID().Short(), a.LocalAddr())
	}
}

func TestMaxFrameSizeBoundary(t *testing.T) {
	a := newTransport(t, nil)
	b := newTransport(t, nil)
	atA, atB := connect(t, a, b)
	ctx := testContext(t)
	exact := bytes.Repeat([]byte("0123456789abcdef"), wire.DefaultMaxFrameSize/16)
	exact[len(exact)-1] = 'Z'
	if err := atA.Send(ctx, exact); err != nil {
		t.Fatalf("Send of exactly 1 MiB: %v", err)
	}
	err := atA.Send(ctx, make([]byte, wire.DefaultMaxFrameSize+1))
	if !errors.Is(err, transport.ErrTooLarge) {
		t.Fatalf("Send of 1 MiB + 1: %v, want ErrTooLarge", err)
	}
	if err := atA.Send(ctx, []byte("still usable")); err != nil {
		t.Fatalf("Send after ErrTooLarge: %v", err)
	}
	got, err := atB.Recv()
	if err != nil || !bytes.Equal(got, exact) {
		t.Fatalf("Recv of 1 MiB: %d bytes, %v", len(got), err)
	}
	got, err = atB.Recv()
	if err != nil || string(got) != "still usable" {
		t.Fatalf("Recv after the refused message: %q, %v", got, err)
	}
}

func TestCloseDeliversQueuedMessagesThenEOF(t *testing.T) {
	a := newTransport(t, nil)
	b := newTransport(t, nil)
	atA, atB := connect(t, a, b)
	ctx := testContext(t)
	for i := range 50 {
		if err := atA.Send(ctx, fmt.Appendf(nil, "message %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	atA.Close()
	for i := range 50 {
		got, err := atB.Recv()
		if want := fmt.Sprintf("message %d", i); err != nil || string(got) != want {
			t.Fatalf("Recv #%d = %q, %v; want %q", i, got, err, want)
		}
	}
	if _, err := atB.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv after the peer closed: %v, want io.EOF", err)
	}
	if err := atA.Send(ctx, []byte("x")); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Send after Close: %v, want ErrClosed", err)
	}
	if _, err := atA.Recv(); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Recv after Close: %v, want ErrClosed", err)
	}
	if b.Stats().MalformedFrames != 0 {
		t.Fatalf("a clean close counted as malformed")
	}
}

func TestCloseUnblocksRecv(t *testing.T) {
	a := newTransport(t, nil)
	b := newTransport(t, nil)
	atA, _ := connect(t, a, b)
	errs := make(chan error, 1)
	go func() {
		_, err := atA.Recv()
		errs <- err
	}()
	atA.Close()
	if err := <-errs; !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("blocked Recv returned %v after Close, want ErrClosed", err)
	}
}

func TestConcurrentSendersKeepEachSendersOrder(t *testing.T) {
	a := newTransport(t, nil)
	b := newTransport(t, nil)
	atA, atB := connect(t, a, b)
	ctx := testContext(t)
	const senders, each = 8, 500
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range each {
				msg := make([]byte, 100+(i%7)*1000)
				msg[0], msg[1], msg[2] = byte(s), byte(i>>8), byte(i)
				if err := atA.Send(ctx, msg); err != nil {
					t.Errorf("sender %d: %v", s, err)
					return
				}
			}
		})
	}
	next := make([]int, senders)
	for range senders * each {
		msg, err := atB.Recv()
		if err != nil {
			t.Fatal(err)
		}
		s, i := int(msg[0]), int(msg[1])<<8|int(msg[2])
		if i != next[s] {
			t.Fatalf("sender %d: got message %d, want %d", s, i, next[s])
		}
		next[s]++
	}
	wg.Wait()
}

func TestSendBlocksOnSlowReaderUntilContextEnds(t *testing.T) {
	a := newTransport(t, nil)
	b := newTransport(t, nil)
	atA, _ := connect(t, a, b) // b never reads
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	msg := make([]byte, 64<<10)
	var err error
	for i := 0; err == nil && i < 100000; i++ {
		err = atA.Send(ctx, msg)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send to a peer that never reads: %v, want context.DeadlineExceeded", err)
	}
}

func TestCloseIsIdempotentAndStopsEverything(t *testing.T) {
	a := newTransport(t, nil)
	b := newTransport(t, nil)
	atA, atB := connect(t, a, b)
	// A silent raw connection in handshake must be closed too.
	silent, err := net.Dial("tcp", b.ListenAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	testutil.Eventually(t, 10*time.Second, "the silent handshake to start", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.handshaking) == 1
	})
	for range 2 {
		if err := b.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if _, err := b.Accept(context.Background()); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Accept after Close: %v, want ErrClosed", err)
	}
	if _, err := b.Dial(context.Background(), a.ListenAddr().String()); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Dial after Close: %v, want ErrClosed", err)
	}
	if err := atB.Send(context.Background(), []byte("x")); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Send on a conn of a closed transport: %v, want ErrClosed", err)
	}
	if _, err := atA.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("the peer of a closed transport got %v, want io.EOF", err)
	}
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := silent.Read(make([]byte, 1)); err == nil {
		t.Fatalf("silent connection still open after Close (read %d bytes)", n)
	}
	if b.Stats().HandshakesRefused != 0 {
		t.Fatalf("closing counted a refusal: %+v", b.Stats())
	}
}

func TestConfigValidationNamesTheField(t *testing.T) {
	key := newKey(t)
	for _, tc := range []struct {
		name  string
		cfg   Config
		field string
	}{
		{"missing key", Config{}, "Config.Key"},
		{"short secret", Config{Key: key, Secret: make([]byte, 16)}, "Config.Secret"},
		{"negative frame size", Config{Key: key, MaxFrameSize: -1}, "Config.MaxFrameSize"},
		{"huge frame size", Config{Key: key, MaxFrameSize: 1 << 31}, "Config.MaxFrameSize"},
		{"negative timeout", Config{Key: key, HandshakeTimeout: -time.Second}, "Config.HandshakeTimeout"},
		{"negative pending", Config{Key: key, MaxPendingHandshakes: -1}, "Config.MaxPendingHandshakes"},
		{"advertise without port", Config{Key: key, ListenAddr: "127.0.0.1:0", AdvertiseAddr: "example.com"}, "Config.AdvertiseAddr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := Listen(tc.cfg)
			if err == nil {
				tr.Close()
				t.Fatalf("Listen accepted %+v", tc.cfg)
			}
			if !errors.Is(err, ErrConfig) || !bytes.Contains([]byte(err.Error()), []byte(tc.field)) {
				t.Fatalf("error %q does not wrap ErrConfig naming %s", err, tc.field)
			}
		})
	}
}

func TestDefaultsApplied(t *testing.T) {
	cfg, err := Config{Key: newKey(t)}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ListenAddr != DefaultListenAddr || cfg.MaxFrameSize != wire.DefaultMaxFrameSize ||
		cfg.HandshakeTimeout != DefaultHandshakeTimeout || cfg.MaxPendingHandshakes != DefaultMaxPendingHandshakes || cfg.Logger == nil {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
}
