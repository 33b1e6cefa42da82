package tcp

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testWriter routes log lines to t.Log until the test ends.
type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newKey returns a fresh identity key.
func newKey(t testing.TB) *peer.Key {
	t.Helper()
	key, err := peer.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// newTransport listens on a kernel-chosen loopback port; mutate adjusts the
// configuration first. The transport is closed when the test ends.
func newTransport(t testing.TB, mutate func(*Config)) *Transport {
	t.Helper()
	cfg := Config{ListenAddr: "127.0.0.1:0", Key: newKey(t), Logger: testLogger(t)}
	if mutate != nil {
		mutate(&cfg)
	}
	tr, err := Listen(cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// testContext returns a context that ends with a generous deadline.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// connect dials b from a and returns both ends.
func connect(t testing.TB, a, b *Transport) (atA, atB transport.Conn) {
	t.Helper()
	ctx := testContext(t)
	type result struct {
		conn transport.Conn
		err  error
	}
	accepted := make(chan result, 1)
	go func() {
		conn, err := b.Accept(ctx)
		accepted <- result{conn, err}
	}()
	atA, err := a.Dial(ctx, b.ListenAddr().String())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	r := <-accepted
	if r.err != nil {
		t.Fatalf("Accept: %v", r.err)
	}
	t.Cleanup(func() { atA.Close(); r.conn.Close() })
	return atA, r.conn
}
