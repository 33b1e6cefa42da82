package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport"
	"github.com/p2p-go/p2p/wire"
)

// link is what the loop knows of one peer: its open connections (oldest
// first) and whether the core asked to keep a link to it.
type link struct {
	info  peer.Info
	conns []*connection
	keep  bool
}

// pendingDial holds messages for an address while it is being dialled.
type pendingDial struct {
	want  peer.ID // zero when the owner of the address is unknown
	queue [][]byte
	keep  bool
}

// connection is one transport connection with its reader and writer.
type connection struct {
	conn   transport.Conn
	remote peer.Info
	// The transport's optional ways of taking a message from the loop
	// without a goroutine hand-off; nil when it has none.
	trySender transport.TrySender
	deferred  transport.DeferredSender
	// unflushed is loop-owned: the connection holds messages queued with
	// TrySendDeferred and is in Runtime.unflushed.
	unflushed bool
	queue     chan []byte
	closing   chan struct{} // closed to ask the writer to drain and close
	drainAt   time.Time     // loop-owned: when closing was closed
	lastUsed  time.Time     // loop-owned
	closed    bool          // loop-owned: connGone already ran
	writing   atomic.Int64  // messages queued for the writer and not yet sent
	// queuedBatches counts the batches the reader queued for the loop and
	// the loop has not yet stepped.
	queuedBatches atomic.Int64
	draining      bool // loop-owned: closing was closed
	denied        bool // loop-owned: closed because its peer is denied
	// lingerClosed is loop-owned: closeLingering closed the connection.
	lingerClosed bool
}

// usable returns the newest connection to id that is not being closed. The
// newest, because an older one is the likelier to have been closed by the
// peer already (idle links close from the oldest), and a message written to
// a connection the peer has closed is lost.
func (r *Runtime) usable(id peer.ID) *connection {
	l := r.links[id]
	if l == nil {
		return nil
	}
	for i := len(l.conns) - 1; i >= 0; i-- {
		if c := l.conns[i]; !c.draining {
			return c
		}
	}
	return nil
}

func (c *connection) enqueue(r *Runtime, data []byte, now time.Time) {
	c.lastUsed = now
	if c.draining {
		r.stats.dropped.Add(1)
		return
	}
	// Hand the message to the transport from the loop when it can take it
	// without waiting and nothing is ahead of it in the writer's queue:
	// one goroutine hand-off less per message. A transport that can defer
	// the write keeps it until the loop runs out of input (flushWrites),
	// so that the messages a burst of input produces for one peer leave in
	// one write.
	if c.writing.Load() == 0 && (c.deferred != nil || c.trySender != nil) {
		var err error
		if c.deferred != nil {
			err = c.deferred.TrySendDeferred(data)
			if err == nil && !c.unflushed {
				c.unflushed = true
				r.unflushed = append(r.unflushed, c)
			}
		} else {
			err = c.trySender.TrySend(data)
		}
		if !errors.Is(err, transport.ErrWouldBlock) {
			if r.handedOver(c, data, err) != nil {
				// The connection failed (the peer closed it, say): stop
				// sending on it, but let its reader take what the peer
				// sent before, then report the closure. Closing it here
				// would throw away messages already received, such as
				// the broadcasts a leaving peer sent just before its
				// goodbye; the linger bound closes it if the reader
				// never ends.
				r.stats.dropped.Add(1)
				r.drain(c)
			}
			return
		}
		// The transport's buffer is full: queue it for the writer.
	}
	c.writing.Add(1)
	select {
	case c.queue <- slices.Clone(data): // data is the loop's encoding buffer
	default:
		c.writing.Add(-1)
		r.stats.dropped.Add(1)
		r.warnQueueFull.Warn("peer", c.remote.ID.Short())
	}
}

// handedOver accounts for data given to c's transport with result err: sent,
// or dropped as too large (the connection stays usable). It returns err
// when the connection failed.
func (r *Runtime) handedOver(c *connection, data []byte, err error) error {
	switch {
	case err == nil:
		r.stats.messagesOut.Add(1)
		r.stats.bytesOut.Add(uint64(len(data)))
	case errors.Is(err, transport.ErrTooLarge):
		r.stats.dropped.Add(1)
		r.warnTooLarge.Warn("peer", c.remote.ID.Short(), "bytes", len(data))
	default:
		return err
	}
	return nil
}

func (r *Runtime) dial(addr string) {
	defer r.wg.Done()
	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.DialTimeout)
	defer cancel()
	conn, err := r.tr.Dial(ctx, addr)
	select {
	case r.events <- dialResult{addr: addr, conn: conn, err: err}:
	case <-r.done:
		if conn != nil {
			conn.Close()
		}
	}
}

func (r *Runtime) dialDone(res dialResult) {
	pd := r.dialing[res.addr]
	delete(r.dialing, res.addr)
	if pd == nil {
		pd = &pendingDial{}
	}
	if res.err == nil && !pd.want.IsZero() && res.conn.Remote().ID != pd.want {
		res.err = fmt.Errorf("%s answered as %s, expected %s", res.addr, res.conn.Remote().ID.Short(), pd.want.Short())
		res.conn.Close()
	}
	if res.err != nil {
		r.stats.dialFailures.Add(1)
		if errors.Is(res.err, transport.ErrRefused) {
			// The error says why: another cluster secret, a bad identity,
			// another protocol. A reset or a timeout is not a refusal.
			r.warnRefused.Warn("addr", res.addr, "err", res.err)
		} else {
			r.logger.Debug("dial failed", "addr", res.addr, "err", res.err)
		}
		if !pd.want.IsZero() {
			if c := r.usable(pd.want); c != nil {
				// The peer reached us meanwhile: use that connection.
				now := r.clock.Now()
				for _, data := range pd.queue {
					c.enqueue(r, data, now)
				}
				return
			}
		}
		r.stats.dropped.Add(uint64(len(pd.queue)))
		r.stats.linkDowns.Add(1)
		r.step(overlay.LinkDown{Peer: pd.want, Addr: res.addr, Err: fmt.Errorf("%w: %w", overlay.ErrDialFailed, res.err)})
		return
	}
	c := r.addConn(res.conn)
	if c == nil {
		r.stats.dropped.Add(uint64(len(pd.queue)))
		r.step(overlay.LinkDown{Peer: res.conn.Remote().ID, Addr: res.addr, Err: errDenied})
		return
	}
	if pd.keep {
		r.links[c.remote.ID].keep = true
	}
	for _, data := range pd.queue {
		c.enqueue(r, data, c.lastUsed)
	}
}

// addConn registers a new authenticated connection and starts its reader and
// writer. It closes the connection of a denied peer, before reading any
// message from it, and returns nil.
func (r *Runtime) addConn(conn transport.Conn) *connection {
	remote := conn.Remote()
	if r.denied(remote.ID) {
		conn.Close()
		r.stats.deniedConns.Add(1)
		r.warnDenied.Warn("peer", remote.ID.Short(), "addr", remote.Addr)
		return nil
	}
	c := &connection{
		conn:     conn,
		remote:   remote,
		queue:    make(chan []byte, r.cfg.SendQueueLen),
		closing:  make(chan struct{}),
		lastUsed: r.clock.Now(),
	}
	c.trySender, _ = conn.(transport.TrySender)
	c.deferred, _ = conn.(transport.DeferredSender)
	l := r.links[remote.ID]
	if l == nil {
		l = &link{info: remote}
		r.links[remote.ID] = l
	}
	if remote.Addr != "" {
		l.info.Addr = remote.Addr
	}
	l.conns = append(l.conns, c)
	r.stats.open.Add(1)
	r.openConns++
	r.wg.Add(2)
	go r.readLoop(c)
	go r.writeLoop(c)
	r.trimConns(c.lastUsed)
	return c
}

// readLoop receives c's messages and hands them to the loop in batches:
// every message that one read from the network brought in (as far as the
// transport can tell, see transport.BufferedReceiver), up to maxBatch, goes
// to the loop in one channel operation.
func (r *Runtime) readLoop(c *connection) {
	defer r.wg.Done()
	buffered, _ := c.conn.(transport.BufferedReceiver)
	var batch *inboundBatch
	// handOver gives batch to the loop; false when the runtime closed.
	handOver := func() bool {
		if batch == nil {
			return true
		}
		if r.receiveInline(batch) {
			batch = nil
			return true
		}
		c.queuedBatches.Add(1)
		select {
		case r.inbound <- batch:
			batch = nil
			return true
		case <-r.done:
			c.queuedBatches.Add(-1)
			r.queued.Release(batch.size)
			return false
		}
	}
	for {
		data, err := c.conn.Recv()
		if err != nil {
			if handOver() {
				r.reportClosed(c, err)
			}
			return
		}
		r.stats.bytesIn.Add(uint64(len(data)))
		msg, err := wire.Unmarshal(data)
		if err != nil {
			r.stats.malformed.Add(1)
			r.warnMalformed.Warn("peer", c.remote.ID.Short(), "addr", c.remote.Addr, "reason", err)
			c.conn.Close()
			if handOver() {
				r.reportClosed(c, err)
			}
			return
		}
		// The batch's messages count against the budget while they wait
		// here too: when the budget is full, hand them over before
		// waiting for it, since only the loop frees it.
		if ok, _ := r.queued.TryAcquire(len(data)); !ok {
			if !handOver() || !r.queued.Acquire(len(data), r.done) {
				return
			}
		}
		if batch == nil {
			batch = newInboundBatch(c)
		}
		batch.msgs = append(batch.msgs, msg)
		batch.size += len(data)
		if buffered == nil || len(batch.msgs) >= maxBatch || !buffered.Buffered() {
			if !handOver() {
				return
			}
		}
	}
}

func (r *Runtime) reportClosed(c *connection, err error) {
	select {
	case r.events <- connClosed{conn: c, err: err}:
	case <-r.done:
	}
}

func (r *Runtime) writeLoop(c *connection) {
	defer r.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	write := func(data []byte) bool {
		defer c.writing.Add(-1)
		if r.handedOver(c, data, c.conn.Send(ctx, data)) != nil {
			// As in enqueue: what the peer sent is still read.
			closeSending(c.conn)
			return false
		}
		return true
	}
	for {
		select {
		case data := <-c.queue:
			if !write(data) {
				return
			}
		case <-c.closing:
			for {
				select {
				case data := <-c.queue:
					if !write(data) {
						return
					}
				default:
					closeSending(c.conn)
					return
				}
			}
		case <-r.done:
			c.conn.Close()
			return
		}
	}
}

// closeSending ends what this side sends on conn. With a transport that can
// half-close, the connection stays open for reading until the peer closes
// its side, so that a message it sent meanwhile (a request crossing our
// close) is still received; the reader then reports the closure. Otherwise
// it is closed.
func closeSending(conn transport.Conn) {
	if hc, ok := conn.(transport.HalfCloser); ok {
		hc.CloseWrite()
		return
	}
	conn.Close()
}

// drainLinger bounds how long a connection whose sending side was closed
// waits for the peer to close its side before it is closed.
const drainLinger = 5 * time.Second

// closeLingering closes the connections still open drainLinger after their
// sending side was closed: a peer that never closes its side.
func (r *Runtime) closeLingering(now time.Time) {
	for _, l := range r.links {
		for _, c := range l.conns {
			if c.draining && !c.closed && !c.lingerClosed && now.Sub(c.drainAt) > drainLinger {
				c.lingerClosed = true
				r.wg.Add(1)
				go func() {
					defer r.wg.Done()
					c.conn.Close()
				}()
			}
		}
	}
}

// connGone forgets a closed connection and tells the core when it was the
// last one to its peer.
func (r *Runtime) connGone(c *connection, err error) {
	if c.closed {
		return
	}
	c.closed = true
	r.stats.open.Add(-1)
	r.drain(c)
	l := r.links[c.remote.ID]
	if l == nil {
		return
	}
	for i, other := range l.conns {
		if other == c {
			l.conns = append(l.conns[:i], l.conns[i+1:]...)
			break
		}
	}
	if len(l.conns) > 0 {
		return
	}
	delete(r.links, c.remote.ID)
	r.stats.linkDowns.Add(1)
	r.logger.Debug("link down", "peer", c.remote.ID.Short(), "err", err)
	r.step(overlay.LinkDown{Peer: c.remote.ID, Addr: c.remote.Addr, Err: err})
}

// keep marks the link to p as wanted, dialling it when there is none.
func (r *Runtime) keep(p peer.Info) {
	if r.denied(p.ID) {
		r.refuseSend(p)
		return
	}
	if c := r.usable(p.ID); c != nil {
		r.links[p.ID].keep = true
		return
	}
	if pd := r.dialing[p.Addr]; pd != nil {
		pd.keep = true
		return
	}
	if p.Addr == "" {
		r.step(overlay.LinkDown{Peer: p.ID, Err: errors.New("no address to connect to")})
		return
	}
	r.dialing[p.Addr] = &pendingDial{want: p.ID, keep: true}
	r.stats.dials.Add(1)
	r.wg.Add(1)
	go r.dial(p.Addr)
}

// release marks the links to id as no longer wanted by the core. They are not
// closed at once: another core of the stack may still be using them (a probe,
// an anti-entropy exchange), and a message the peer is sending on a
// connection being closed would be lost. Unwanted links close after
// IdleTimeout without traffic.
func (r *Runtime) release(id peer.ID) {
	if l := r.links[id]; l != nil {
		l.keep = false
	}
}

// closeIdle closes unkept links idle for longer than IdleTimeout.
func (r *Runtime) closeIdle(now time.Time) {
	for _, l := range r.links {
		if l.keep {
			continue
		}
		for _, c := range l.conns {
			if !c.draining && now.Sub(c.lastUsed) > r.cfg.IdleTimeout {
				r.drain(c)
			}
		}
	}
}

func (r *Runtime) shutdownLinks() {
	for _, l := range r.links {
		for _, c := range l.conns {
			c.conn.Close()
		}
	}
}

// errDenied is the error of the LinkDown reported for a denied peer.
var errDenied = errors.New("peer is revoked")

// denied reports whether Config.Denied refuses id.
func (r *Runtime) denied(id peer.ID) bool {
	return r.cfg.Denied != nil && !id.IsZero() && r.cfg.Denied(id)
}

// refuseSend drops a message or a link request for a denied peer and tells
// the core the peer is unreachable.
func (r *Runtime) refuseSend(to peer.Info) {
	r.stats.deniedSends.Add(1)
	r.step(overlay.LinkDown{Peer: to.ID, Addr: to.Addr, Err: errDenied})
}

// CloseDenied asks the runtime to close every connection whose peer
// Config.Denied now refuses. It returns at once and may be called from any
// goroutine, OnOutput included; the connections close on the loop
// goroutine, and messages they delivered but the core has not yet seen are
// dropped.
func (r *Runtime) CloseDenied() {
	select {
	case r.deniedCheck <- struct{}{}:
	default:
	}
}

// closeDenied closes the connections of denied peers at once, without
// draining what is queued for them.
func (r *Runtime) closeDenied() {
	for id, l := range r.links {
		if !r.denied(id) {
			continue
		}
		for _, c := range l.conns {
			if c.denied {
				continue
			}
			c.denied = true
			r.drain(c)
			r.stats.deniedConns.Add(1)
			r.logger.Info("closing a link of a revoked peer", "peer", id.Short())
			c.conn.Close() // its reader reports the closure: connGone
		}
	}
	for _, pd := range r.dialing {
		if r.denied(pd.want) {
			pd.queue = nil // and addConn refuses the dial's result
		}
	}
}
