package tcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

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

	accepted       chan *Conn    // handshaken inbound connections
	handshakeSlots chan struct{} // one token per inbound handshake in progress
	closing        chan struct{} // closed by Close
	closeOnce      sync.Once
	wg             sync.WaitGroup // accept loop, handshakes, writers

	mu sync.Mutex // guards the fields below
	// closed is set by Close; no goroutine starts and no connection is
	// registered afterwards.
	closed bool
	// conns are the open, handshaken connections (inbound and outbound).
	conns map[*Conn]struct{}
	// handshaking are the raw connections whose handshake is in progress.
	handshaking map[net.Conn]struct{}
}

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
		return nil, fmt.Errorf("tcp: Config.AdvertiseAddr: %w", err)
	}
	payload, err := newIdentityPayload(cfg.Key, static.Public, advertise)
	if err != nil {
		listener.Close()
		return nil, fmt.Errorf("tcp: encode identity: %w", err)
	}
	t := &Transport{
		cfg:            cfg,
		log:            cfg.Logger.With("local", cfg.Key.ID().Short()),
		listener:       listener,
		localAddr:      advertise,
		hs:             handshaker{static: static, keyring: cfg.Keyring, payload: payload},
		accepted:       make(chan *Conn, acceptQueueLen),
		handshakeSlots: make(chan struct{}, cfg.MaxPendingHandshakes),
		closing:        make(chan struct{}),
		conns:          make(map[*Conn]struct{}),
		handshaking:    make(map[net.Conn]struct{}),
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
		select {
		case t.handshakeSlots <- struct{}{}:
		default:
			raw.Close()
			t.refused(raw.RemoteAddr(), &handshakeError{reason: reasonOverload, err: errors.New("inbound handshake limit reached")})
			continue
		}
		if !t.track(raw) {
			<-t.handshakeSlots
			raw.Close()
			return
		}
		go t.handshakeInbound(raw)
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

func (t *Transport) handshakeInbound(raw net.Conn) {
	defer t.untrack(raw)
	counted := &countingConn{Conn: raw, stats: &t.stats}
	raw.SetDeadline(time.Now().Add(t.cfg.HandshakeTimeout))
	keys, err := t.hs.run(counted, false)
	<-t.handshakeSlots
	if err != nil {
		raw.Close()
		t.refused(raw.RemoteAddr(), err)
		return
	}
	raw.SetDeadline(time.Time{})
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

// register wraps a handshaken connection and starts its writer; it fails
// (closing raw) when the transport is closed.
func (t *Transport) register(raw net.Conn, keys *sessionKeys) (*Conn, error) {
	conn := newConn(t, raw, keys)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		raw.Close()
		return nil, fmt.Errorf("tcp: connection to %s: %w", keys.remote, transport.ErrClosed)
	}
	t.conns[conn] = struct{}{}
	t.stats.handshakesAccepted.Add(1)
	t.wg.Add(1)
	go conn.writeLoop()
	return conn, nil
}

// forget removes a closing connection from the open set.
func (t *Transport) forget(c *Conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

// refused logs and counts a failed handshake.
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
	t.log.Warn("handshake refused", "remote_addr", remote.String(), "reason", reason.String(), "err", err)
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
		return nil, fmt.Errorf("tcp: dial %s: %w: %w", addr, transport.ErrRefused, err)
	}
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
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("tcp: close listener: %w", err)
	}
	return nil
}
