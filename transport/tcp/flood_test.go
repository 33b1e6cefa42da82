package tcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2p-go/p2p/internal/testutil"
	"github.com/p2p-go/p2p/transport"
)

// flood keeps sockets open to addr from the given loopback source
// addresses, as an outsider without the cluster secret does: each socket
// sends nothing and is reopened as soon as the server closes it. It returns
// the number of connections opened so far and a function that stops it.
func flood(t *testing.T, addr string, sources []string, sockets int) (opened *atomic.Int64, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	opened = new(atomic.Int64)
	var wg sync.WaitGroup
	for i := range sockets {
		source := sources[i%len(sources)]
		wg.Go(func() {
			dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
			for ctx.Err() == nil {
				raw, err := dialer.DialContext(ctx, "tcp", addr)
				if err != nil {
					continue
				}
				opened.Add(1)
				stopRead := context.AfterFunc(ctx, func() { raw.Close() })
				io.Copy(io.Discard, raw) // until the server closes it
				stopRead()
				raw.Close()
			}
		})
	}
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return opened, stop
}

// loopbackSources returns n source addresses 127.0.0.2, 127.0.0.3, ...
func loopbackSources(n int) []string {
	sources := make([]string, n)
	for i := range sources {
		sources[i] = fmt.Sprintf("127.0.0.%d", 2+i)
	}
	return sources
}

// dialAndTalk dials server from a fresh transport with the cluster secret,
// within a 5-second deadline, and checks that a message gets through.
func dialAndTalk(t *testing.T, server *Transport, sec []byte) error {
	t.Helper()
	client := newTransport(t, func(cfg *Config) { cfg.Secret = sec; cfg.Logger = nil })
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	accepted := make(chan transport.Conn, 1)
	go func() {
		conn, err := server.Accept(ctx)
		if err == nil {
			accepted <- conn
		}
		close(accepted)
	}()
	conn, err := client.Dial(ctx, server.ListenAddr().String())
	if err != nil {
		<-accepted
		return err
	}
	defer conn.Close()
	if err := conn.Send(ctx, []byte("hello")); err != nil {
		return err
	}
	atServer, ok := <-accepted
	if !ok {
		return errors.New("the server accepted nothing")
	}
	defer atServer.Close()
	if got, err := atServer.Recv(); err != nil || string(got) != "hello" {
		return fmt.Errorf("Recv = %q, %v", got, err)
	}
	return nil
}

// Issue 10, row 2: an outsider keeps 400 idle sockets open from a few
// addresses, reopening each as soon as it is closed. Before the per-address
// limit and the first-message deadline, the 256 handshake slots stayed full
// and 0 of 20 legitimate dials succeeded.
func TestIdleSocketFloodFromFewAddressesDoesNotStarveNewcomers(t *testing.T) {
	sec := secret(9)
	server := newTransport(t, func(cfg *Config) { cfg.Secret = sec; cfg.Logger = nil })
	opened, stop := flood(t, server.ListenAddr().String(), loopbackSources(4), 400)
	testutil.Eventually(t, 10*time.Second, "the flood to fill its per-address slots", func() bool {
		return server.Stats().RefusedPerAddress > 100
	})
	// A newcomer from an address the server never saw (127.0.0.1 here is
	// not a member: nothing completed a handshake before the flood).
	for i := range 20 {
		if err := dialAndTalk(t, server, sec); err != nil {
			t.Fatalf("legitimate dial %d of 20 during the flood: %v", i+1, err)
		}
	}
	stop()
	s := server.Stats()
	t.Logf("flood: %d connections opened; server: %+v", opened.Load(), s)
	if s.HandshakesAccepted < 20 {
		t.Fatalf("%d handshakes accepted, want at least 20", s.HandshakesAccepted)
	}
	if s.RefusedBadSecret != 0 {
		t.Fatalf("idle sockets counted as a bad secret: %+v", s)
	}
}

// Issue 10, row 2, from many addresses: the flood's sockets stay under the
// per-address limit and fill every slot that is not reserved, but members
// (addresses that completed a handshake recently) still get through.
func TestIdleSocketFloodFromManyAddressesDoesNotStarveMembers(t *testing.T) {
	sec := secret(9)
	server := newTransport(t, func(cfg *Config) { cfg.Secret = sec; cfg.Logger = nil })
	// 127.0.0.1 becomes a member.
	if err := dialAndTalk(t, server, sec); err != nil {
		t.Fatal(err)
	}
	_, stop := flood(t, server.ListenAddr().String(), loopbackSources(20), 400)
	testutil.Eventually(t, 10*time.Second, "the flood to fill the slots that are not reserved", func() bool {
		return server.Stats().RefusedOverload > 100
	})
	for i := range 20 {
		if err := dialAndTalk(t, server, sec); err != nil {
			t.Fatalf("member's dial %d of 20 during the flood: %v", i+1, err)
		}
	}
	stop()
	if s := server.Stats(); s.RefusedBadSecret != 0 || s.RefusedPerAddress != 0 {
		t.Fatalf("refusals under the wrong reason: %+v", s)
	}
}

func TestFirstMessageDeadlineIsShorterThanTheHandshakes(t *testing.T) {
	server := newTransport(t, func(cfg *Config) {
		cfg.HandshakeTimeout = time.Minute
		cfg.FirstMessageTimeout = 100 * time.Millisecond
	})
	silent, err := net.Dial("tcp", server.ListenAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	expectDisconnected(t, silent)
	testutil.Eventually(t, 10*time.Second, "the timeout to be counted", func() bool { return server.Stats().RefusedTimeout == 1 })
	// A peer that sends message 1 in time has the whole handshake's
	// deadline for the rest: a normal handshake succeeds.
	expectGoodPeerServed(t, server, nil)
}

func TestHandshakesPerAddressAreBounded(t *testing.T) {
	server := newTransport(t, func(cfg *Config) { cfg.MaxHandshakesPerAddr = 2 })
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	var held []net.Conn
	for range 2 {
		raw, err := dialer.Dial("tcp", server.ListenAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		held = append(held, raw)
	}
	third, err := dialer.Dial("tcp", server.ListenAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	expectDisconnected(t, third)
	testutil.Eventually(t, 10*time.Second, "the refusal to be counted", func() bool { return server.Stats().RefusedPerAddress == 1 })
	// Another address is served meanwhile.
	expectGoodPeerServed(t, server, nil)
	if s := server.Stats(); s.RefusedPerAddress != 1 || s.RefusedOverload != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// countingHandler counts the log records it is handed.
type countingHandler struct {
	records *atomic.Int64
	mu      *sync.Mutex
	last    *[]string // the messages of the last few records
}

func newCountingHandler() countingHandler {
	return countingHandler{records: new(atomic.Int64), mu: new(sync.Mutex), last: new([]string)}
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.records.Add(1)
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.mu.Lock()
	*h.last = append(*h.last, b.String())
	if len(*h.last) > 5 {
		*h.last = (*h.last)[1:]
	}
	h.mu.Unlock()
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// connectAndClose opens n connections to addr and closes each at once
// (with a reset, so that the client's ports do not linger in TIME_WAIT).
func connectAndClose(t *testing.T, addr string, n, workers int) {
	t.Helper()
	sources := loopbackSources(workers)
	var wg sync.WaitGroup
	var done atomic.Int64
	for w := range workers {
		wg.Go(func() {
			dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(sources[w])}}
			for done.Add(1) <= int64(n) {
				raw, err := dialer.Dial("tcp", addr)
				if err != nil {
					done.Add(-1)
					continue
				}
				raw.(*net.TCPConn).SetLinger(0)
				raw.Close()
			}
		})
	}
	wg.Wait()
}

// refusalFlood runs issue 10, row 7: n connections opened and closed at
// once. It checks that every one is counted, under the right reason, and
// that the logs hold fewer than 100 lines.
func refusalFlood(t *testing.T, n int) {
	handler := newCountingHandler()
	server := newTransport(t, func(cfg *Config) { cfg.Logger = slog.New(handler) })
	linesBefore := handler.records.Load() // "listening", the no-secret warning
	connectAndClose(t, server.ListenAddr().String(), n, 8)
	testutil.Eventually(t, 10*time.Second, "every refusal to be counted", func() bool { return server.Stats().HandshakesRefused == uint64(n) })
	server.Close() // writes the last summary
	s := server.Stats()
	lines := handler.records.Load() - linesBefore
	handler.mu.Lock()
	t.Logf("%d refused connections, %d log lines; stats %+v; last lines:\n%s", n, lines, s, strings.Join(*handler.last, "\n"))
	handler.mu.Unlock()
	if lines >= 100 {
		t.Fatalf("%d refused connections wrote %d log lines, want fewer than 100", n, lines)
	}
	if s.RefusedBadSecret != 0 || s.RefusedBadIdentity != 0 {
		t.Fatalf("connect-and-close counted as a bad secret or identity: %+v", s)
	}
}

func TestConnectAndCloseFloodLogsAtABoundedRate(t *testing.T) { refusalFlood(t, 3000) }

// Issue 9, item 4: a peer that resets the connection during the handshake
// (a crashed or killed node) is reported as a reset, not as a refusal "wrong
// cluster secret or identity?".
func TestResetDuringHandshakeIsNotARefusal(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	served := make(chan struct{})
	go func() {
		defer close(served)
		raw, err := listener.Accept()
		if err != nil {
			return
		}
		readHandshakeMsg(raw) // message 1, then a reset as a dying peer's kernel sends
		raw.(*net.TCPConn).SetLinger(0)
		raw.Close()
	}()
	client := newTransport(t, nil)
	_, err = client.Dial(testContext(t), listener.Addr().String())
	<-served
	if err == nil || errors.Is(err, transport.ErrRefused) {
		t.Fatalf("Dial = %v, want a failure that is not ErrRefused", err)
	}
	if !strings.Contains(err.Error(), "reset") {
		t.Fatalf("Dial = %v, want it to say the connection was reset", err)
	}
	if s := client.Stats(); s.RefusedClosedByPeer != 1 || s.RefusedBadSecret != 0 {
		t.Fatalf("stats %+v, want one refusal counted as closed by peer", s)
	}
}
