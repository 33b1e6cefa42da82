package tcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/p2p-go/p2p/internal/bytebudget"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport"
)

var _ transport.Transport = (*Transport)(nil)

// acceptQueueLen bounds handshaken inbound connections waiting for Accept;
// their handshake goroutines wait (until Close) beyond it.
const acceptQueueLen = 64

// Transport is a TCP listener and dialer whose connections are secured by a
// Noise XX handshake and authenticated by the peers' ed25519 identities.
type Transport struct {
	cfg       Config
	log       *slog.Logger
	listener  net.Listener
	localAddr string
	hs        handshaker
	stats     counters

	accepted   chan *Conn         // handshaken inbound connections
	buffered   *bytebudget.Budget // bytes held for messages still arriving
	connLog    *refusalLog        // connections closed for a limit or a bad frame
	admission  *admission         // handshake slots of inbound connections
	refusalLog *refusalLog
	closing    chan struct{} // closed by Close
	closeOnce  sync.Once
	wg         sync.WaitGroup // accept loop, handshakes, writers

	mu sync.Mutex // guards the fields below
	// closed is set by Close; no goroutine starts and no connection is
	// registered afterwards.
	closed bool
	// conns are the open, handshaken connections (inbound and outbound).
	conns map[*Conn]struct{}
	// perPeer counts the open connections of conns by peer ID.
	perPeer map[peer.ID]int
	// handshaking are the raw connections whose handshake is in progress.
	handshaking map[net.Conn]struct{}
}

// ErrConnLimit is returned by Dial when MaxConns connections are open, or
// MaxConnsPerPeer to the peer dialled.
var ErrConnLimit = errors.New("tcp: connection limit reached")

// Listen validates cfg, listens on cfg.ListenAddr and starts accepting
// connections. The returned transport must be closed with Close.
func Listen(cfg Config) (*Transport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	static, err := cipherSuite.GenerateKeypair(nil)
	if err != nil {
		return nil, fmt.Errorf("tcp: generate noise static key: %w", err)
	}
	listener, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("tcp: listen on %s: %w", cfg.ListenAddr, err)
	}
	advertise := cfg.AdvertiseAddr
	if advertise == "" {
		advertise = listener.Addr().String()
	}
	if err := checkAddr(advertise); err != nil {
		listener.Close()
		return nil, fmt.Errorf("%w: Config.AdvertiseAddr: %w", ErrConfig, err)
	}
	payload, err := newIdentityPayload(cfg.Key, static.Public, advertise)
	if err != nil {
		listener.Close()
		return nil, fmt.Errorf("tcp: encode identity: %w", err)
	}
	log := cfg.Logger.With("local", cfg.Key.ID().Short())
	t := &Transport{
		cfg:         cfg,
		log:         log,
		listener:    listener,
		localAddr:   advertise,
		hs:          handshaker{static: static, keyring: cfg.Keyring, payload: payload},
		accepted:    make(chan *Conn, acceptQueueLen),
		admission:   newAdmission(cfg),
		refusalLog:  newRefusalLog(log, cfg.RefusalLogInterval, "handshake refused"),
		connLog:     newRefusalLog(log, cfg.RefusalLogInterval, "connection closed"),
		buffered:    bytebudget.New(cfg.MaxBufferedBytes),
		perPeer:     make(map[peer.ID]int),
		closing:     make(chan struct{}),
		conns:       make(map[*Conn]struct{}),
		handshaking: make(map[net.Conn]struct{}),
	}
	if cfg.Keyring.Primary() == nil {
		t.log.Warn("no cluster secret: the network admits any peer (connections are still encrypted)", "listen_addr", listener.Addr().String())
	}
	if host, _, err := net.SplitHostPort(advertise); err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			t.log.Warn("advertising a wildcard address that remote peers cannot dial; set Config.AdvertiseAddr", "advertise_addr", advertise)
		}
	}
	t.log.Info("listening", "listen_addr", listener.Addr().String(), "advertise_addr", advertise)
	t.wg.Add(1)
	go t.acceptLoop()
	return t, nil
}

// LocalAddr returns the advertised address, which peers dial.
func (t *Transport) LocalAddr() string { return t.localAddr }

// ListenAddr returns the address actually listened on (useful with port 0).
func (t *Transport) ListenAddr() net.Addr { return t.listener.Addr() }

// Keyring returns the transport's keyring: install, use and remove cluster
// secrets on it while the transport runs.
func (t *Transport) Keyring() *Keyring { return t.cfg.Keyring }

// Stats returns a snapshot of the transport's counters.
func (t *Transport) Stats() Stats { return t.stats.snapshot() }

func (t *Transport) acceptLoop() {
	defer t.wg.Done()
	var backoff time.Duration
	for {
		raw, err := t.listener.Accept()
		if err != nil {
			if t.isClosing() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failure such as EMFILE: wait a little, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			t.log.Warn("accept failed", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-t.closing:
				return
			}
			continue
		}
		backoff = 0
		if t.openConns() >= t.cfg.MaxConns {
			raw.Close()
			t.refused(raw.RemoteAddr(), refuse(reasonConnLimit, "%d connections open", t.cfg.MaxConns))
			continue
		}
		ip := sourceAddr(raw.RemoteAddr())
		tk := t.admission.admit(ip, raw)
		if !t.track(raw) {
			t.admission.release(tk)
			raw.Close()
			return
		}
		go t.handshakeInbound(raw, ip, tk)
	}
}

// track registers a raw connection whose handshake starts, and adds it to
// the wait group; false when the transport is closed.
func (t *Transport) track(raw net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.handshaking[raw] = struct{}{}
	t.wg.Add(1)
	return true
}

func (t *Transport) untrack(raw net.Conn) {
	t.mu.Lock()
	delete(t.handshaking, raw)
	t.mu.Unlock()
	t.wg.Done()
}

func (t *Transport) handshakeInbound(raw net.Conn, ip netip.Addr, tk *ticket) {
	defer t.untrack(raw)
	start := time.Now()
	counted := &countingConn{Conn: raw, stats: &t.stats}
	// Message 1 must come quickly; the rest within the whole deadline.
	raw.SetDeadline(start.Add(t.cfg.FirstMessageTimeout))
	keys, err := t.hs.run(&inboundConn{countingConn: *counted, deadline: start.Add(t.cfg.HandshakeTimeout), admission: t.admission, ticket: tk}, false)
	if t.admission.release(tk) {
		// Closed idle to make room for a newer connection: whatever
		// the read said, refused for the overload.
		err = refuse(reasonOverload, "closed idle before message 1 to make room for a newer connection")
	}
	if err != nil {
		raw.Close()
		t.refused(raw.RemoteAddr(), err)
		return
	}
	raw.SetDeadline(time.Time{})
	t.admission.remember(ip, time.Now())
	conn, err := t.register(counted, keys)
	if err != nil {
		return
	}
	t.log.Debug("accepted connection", "peer", keys.remote.String(), "remote_addr", raw.RemoteAddr().String())
	select {
	case t.accepted <- conn:
	case <-t.closing:
		conn.signalClose()
	}
}

// openConns returns the number of open connections.
func (t *Transport) openConns() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns)
}

// register wraps a handshaken connection and starts its writer; it fails
// (closing raw) when the transport is closed or a connection limit is
// reached, which it counts.
func (t *Transport) register(raw net.Conn, keys *sessionKeys) (*Conn, error) {
	conn := newConn(t, raw, keys)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		raw.Close()
		return nil, fmt.Errorf("tcp: connection to %s: %w", keys.remote, transport.ErrClosed)
	}
	var over *handshakeError
	switch {
	case len(t.conns) >= t.cfg.MaxConns:
		over = refuse(reasonConnLimit, "%w: %d connections open", ErrConnLimit, len(t.conns))
	case t.perPeer[keys.remote.ID] >= t.cfg.MaxConnsPerPeer:
		over = refuse(reasonPeerLimit, "%w: %d connections to %s open", ErrConnLimit, t.perPeer[keys.remote.ID], keys.remote.ID.Short())
	}
	if over != nil {
		raw.Close()
		t.stats.refuse(over.reason)
		t.connLog.add(over.reason, raw.RemoteAddr().String(), over)
		return nil, fmt.Errorf("tcp: connection to %s: %w", keys.remote, over)
	}
	t.conns[conn] = struct{}{}
	t.perPeer[keys.remote.ID]++
	t.stats.handshakesAccepted.Add(1)
	t.wg.Add(1)
	go conn.writeLoop()
	return conn, nil
}

// forget removes a closing connection from the open set.
func (t *Transport) forget(c *Conn) {
	// The peer held a connection until now: still a member.
	t.admission.remember(sourceAddr(c.raw.RemoteAddr()), time.Now())
	t.mu.Lock()
	if _, ok := t.conns[c]; ok {
		delete(t.conns, c)
		if t.perPeer[c.remote.ID] <= 1 {
			delete(t.perPeer, c.remote.ID)
		} else {
			t.perPeer[c.remote.ID]--
		}
	}
	t.mu.Unlock()
}

// closedConn counts a connection closed for reason and logs it, at a
// bounded rate.
func (t *Transport) closedConn(reason refuseReason, c *Conn, err error) {
	t.stats.refuse(reason)
	t.connLog.add(reason, c.raw.RemoteAddr().String()+" ("+c.remote.ID.Short()+")", err)
}

// refused counts a failed handshake and logs it, at a bounded rate.
func (t *Transport) refused(remote net.Addr, err error) {
	if t.isClosing() {
		return
	}
	reason := reasonProtocol
	var hsErr *handshakeError
	if errors.As(err, &hsErr) {
		reason = hsErr.reason
	}
	t.stats.refuse(reason)
	t.refusalLog.add(reason, remote.String(), err)
}

// isRefusal reports whether a failed outbound handshake means the peer
// refused us (another cluster secret, a bad identity, another protocol),
// as opposed to a timeout, a reset or a close before message 2 that a
// crashed or overloaded peer also causes.
func isRefusal(err error) bool {
	var hsErr *handshakeError
	if !errors.As(err, &hsErr) {
		return false
	}
	switch hsErr.reason {
	case reasonBadSecret, reasonBadIdentity, reasonProtocol:
		return true
	case reasonClosedByPeer:
		return errors.Is(err, errPeerHungUp)
	default:
		return false
	}
}

func (t *Transport) isClosing() bool {
	select {
	case <-t.closing:
		return true
	default:
		return false
	}
}

// Accept returns the next inbound connection whose handshake succeeded. It
// returns transport.ErrClosed once the transport is closed, or ctx's error.
func (t *Transport) Accept(ctx context.Context) (transport.Conn, error) {
	select {
	case conn := <-t.accepted:
		return conn, nil
	case <-t.closing:
		return nil, fmt.Errorf("tcp: accept: %w", transport.ErrClosed)
	case <-ctx.Done():
		return nil, fmt.Errorf("tcp: accept: %w", ctx.Err())
	}
}

// Dial connects to addr and runs the handshake as initiator, bounded by ctx
// and by HandshakeTimeout. A failed authentication returns an error wrapping
// transport.ErrRefused.
func (t *Transport) Dial(ctx context.Context, addr string) (transport.Conn, error) {
	if t.isClosing() {
		return nil, fmt.Errorf("tcp: dial %s: %w", addr, transport.ErrClosed)
	}
	if open := t.openConns(); open >= t.cfg.MaxConns {
		over := refuse(reasonConnLimit, "%w: %d connections open", ErrConnLimit, open)
		t.stats.refuse(over.reason)
		t.connLog.add(over.reason, addr, over)
		return nil, fmt.Errorf("tcp: dial %s: %w", addr, over)
	}
	var dialer net.Dialer
	raw, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tcp: dial %s: %w", addr, err)
	}
	if !t.track(raw) {
		raw.Close()
		return nil, fmt.Errorf("tcp: dial %s: %w", addr, transport.ErrClosed)
	}
	keys, err := t.handshakeOutbound(ctx, raw)
	t.untrack(raw)
	if err != nil {
		raw.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("tcp: dial %s: %w", addr, ctx.Err())
		}
		if t.isClosing() {
			return nil, fmt.Errorf("tcp: dial %s: %w", addr, transport.ErrClosed)
		}
		t.refused(raw.RemoteAddr(), err)
		if isRefusal(err) {
			return nil, fmt.Errorf("tcp: dial %s: %w: %w", addr, transport.ErrRefused, err)
		}
		return nil, fmt.Errorf("tcp: dial %s: handshake failed: %w", addr, err)
	}
	t.admission.remember(sourceAddr(raw.RemoteAddr()), time.Now())
	conn, err := t.register(&countingConn{Conn: raw, stats: &t.stats}, keys)
	if err != nil {
		return nil, err
	}
	t.log.Debug("dialed connection", "peer", keys.remote.String(), "remote_addr", addr)
	return conn, nil
}

func (t *Transport) handshakeOutbound(ctx context.Context, raw net.Conn) (*sessionKeys, error) {
	// ctx ends the handshake through AfterFunc (not by copying its deadline
	// to the socket) so that ctx.Err() is set whenever ctx caused the failure.
	raw.SetDeadline(time.Now().Add(t.cfg.HandshakeTimeout))
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	keys, err := t.hs.run(&countingConn{Conn: raw, stats: &t.stats}, true)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	raw.SetDeadline(time.Time{})
	return keys, nil
}

// Close stops listening, closes every connection (inbound, outbound and in
// handshake), and returns once every goroutine of the transport has ended.
// It may be called more than once.
func (t *Transport) Close() error {
	var err error
	t.closeOnce.Do(func() {
		close(t.closing)
		err = t.listener.Close()
		t.mu.Lock()
		t.closed = true
		conns := make([]*Conn, 0, len(t.conns))
		for c := range t.conns {
			conns = append(conns, c)
		}
		for raw := range t.handshaking {
			raw.Close()
		}
		t.mu.Unlock()
		for _, c := range conns {
			c.signalClose()
		}
		t.log.Info("closed")
	})
	t.wg.Wait()
	t.refusalLog.close()
	t.connLog.close()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("tcp: close listener: %w", err)
	}
	return nil
}
