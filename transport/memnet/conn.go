package memnet

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport"
)

var _ transport.Conn = (*Conn)(nil)

// delivery is a message (or the end of the stream) in flight to a Conn.
type delivery struct {
	msg []byte
	at  time.Time // when it reaches the receiver
	eof bool      // the sender closed the connection
}

// Conn is one end of a connection on a [Network].
type Conn struct {
	network   *Network
	transport *Transport
	local     peer.Info
	remote    peer.Info
	peer      *Conn // the other end

	// The fields below are guarded by network.mu.
	closed      bool          // closed locally
	writeClosed bool          // CloseWrite: the peer was sent the end of stream
	resetErr    error         // set when a fault broke the connection
	eofRead     bool          // Recv returned the peer's end of stream
	inbound     []delivery    // messages in flight to this end, in order
	lastAt      time.Time     // delivery time of the last message queued here
	changed     chan struct{} // closed and replaced on any change of the above
}

func newConnPair(dialer, target *Transport) (atDialer, atTarget *Conn) {
	atDialer = &Conn{network: dialer.network, transport: dialer, local: dialer.info, remote: target.info, changed: make(chan struct{})}
	atTarget = &Conn{network: dialer.network, transport: target, local: target.info, remote: dialer.info, changed: make(chan struct{})}
	atDialer.peer, atTarget.peer = atTarget, atDialer
	return atDialer, atTarget
}

// Remote returns the ID and address of the node at the other end.
func (c *Conn) Remote() peer.Info { return c.remote }

// Send queues msg for delivery after the network's latency. It never
// blocks. It returns transport.ErrTooLarge for a message over the maximum
// frame size, transport.ErrClosed after Close, and ErrConnReset when a
// fault broke the connection or the peer closed it. A message lost to Loss
// or the hook is reported as sent, as TCP would.
func (c *Conn) Send(ctx context.Context, msg []byte) error {
	n := c.network
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memnet: send from %s to %s: %w", c.local.Addr, c.remote.Addr, err)
	}
	n.mu.Lock()
	if len(msg) > n.maxFrameSize {
		n.mu.Unlock()
		return fmt.Errorf("%w: %d bytes from %s to %s, limit %d", transport.ErrTooLarge, len(msg), c.local.Addr, c.remote, n.maxFrameSize)
	}
	if err := c.sendErrLocked(); err != nil {
		n.mu.Unlock()
		return err
	}
	n.stats.MessagesSent++
	n.stats.BytesSent += uint64(len(msg))
	if n.loss > 0 && n.random.Float64() < n.loss {
		n.stats.MessagesDropped++
		n.mu.Unlock()
		return nil
	}
	hook := n.hook
	n.mu.Unlock()

	msg = append([]byte(nil), msg...)
	if hook != nil && !hook(c.local.Addr, c.remote.Addr, msg) {
		n.mu.Lock()
		n.stats.MessagesDropped++
		n.mu.Unlock()
		return nil
	}

	n.mu.Lock()
	defer n.mu.Unlock()
	if err := c.sendErrLocked(); err != nil {
		n.stats.MessagesDropped++
		return err
	}
	c.peer.enqueueLocked(delivery{msg: msg}, n.delayLocked())
	return nil
}

// TrySend implements transport.TrySender: memnet's Send never waits.
func (c *Conn) TrySend(msg []byte) error { return c.Send(context.Background(), msg) }

var _ transport.TrySender = (*Conn)(nil)

// sendErrLocked returns why Send must fail, or nil.
func (c *Conn) sendErrLocked() error {
	switch {
	case c.closed, c.writeClosed:
		return fmt.Errorf("memnet: send from %s to %s: %w", c.local.Addr, c.remote, transport.ErrClosed)
	case c.resetErr != nil:
		return c.resetErr
	case c.peer.closed:
		return fmt.Errorf("memnet: send from %s to %s: peer closed the connection: %w", c.local.Addr, c.remote, ErrConnReset)
	}
	return nil
}

// enqueueLocked schedules d for this end, after the last queued delivery.
func (c *Conn) enqueueLocked(d delivery, delay time.Duration) {
	d.at = time.Now().Add(delay)
	if d.at.Before(c.lastAt) {
		d.at = c.lastAt
	}
	c.lastAt = d.at
	c.inbound = append(c.inbound, d)
	c.signalLocked()
}

// Recv returns the next message once its delivery time has come. It
// returns io.EOF after the peer closed the connection gracefully (and every
// message it sent before was read), ErrConnReset when a fault broke the
// connection, and transport.ErrClosed after Close (which unblocks it).
func (c *Conn) Recv() ([]byte, error) {
	n := c.network
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		n.mu.Lock()
		switch {
		case c.closed:
			n.mu.Unlock()
			return nil, fmt.Errorf("memnet: recv on %s from %s: %w", c.local.Addr, c.remote, transport.ErrClosed)
		case c.resetErr != nil:
			n.mu.Unlock()
			return nil, c.resetErr
		case c.eofRead:
			n.mu.Unlock()
			return nil, fmt.Errorf("memnet: recv on %s from %s: %w", c.local.Addr, c.remote, io.EOF)
		}
		var wait time.Duration
		if len(c.inbound) > 0 {
			head := c.inbound[0]
			wait = time.Until(head.at)
			if wait <= 0 {
				c.inbound[0] = delivery{}
				c.inbound = c.inbound[1:]
				if head.eof {
					c.eofRead = true
					n.mu.Unlock()
					return nil, fmt.Errorf("memnet: recv on %s from %s: %w", c.local.Addr, c.remote, io.EOF)
				}
				n.stats.MessagesDelivered++
				n.stats.BytesDelivered += uint64(len(head.msg))
				n.mu.Unlock()
				return head.msg, nil
			}
		}
		changed := c.changed
		n.mu.Unlock()
		var due <-chan time.Time
		if wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			due = timer.C
		}
		select {
		case <-changed:
		case <-due:
		}
	}
}

// Close closes this end: Recv and Send return transport.ErrClosed, and the
// peer reads what was already sent, then io.EOF. It may be called more
// than once.
func (c *Conn) Close() error {
	c.network.mu.Lock()
	defer c.network.mu.Unlock()
	c.closeLocked()
	return nil
}

func (c *Conn) closeLocked() {
	if c.closed {
		return
	}
	c.closed = true
	c.network.stats.MessagesDropped += uint64(c.pendingMessagesLocked())
	c.inbound = nil
	delete(c.transport.conns, c)
	if !c.writeClosed {
		c.sendEOFLocked()
	}
	c.signalLocked()
}

// CloseWrite implements transport.HalfCloser, as TCP's shutdown(SHUT_WR):
// the peer receives what was sent, then the end of the stream, while this
// end goes on receiving until the peer closes too. Send then fails with
// transport.ErrClosed.
func (c *Conn) CloseWrite() error {
	c.network.mu.Lock()
	defer c.network.mu.Unlock()
	if c.closed || c.writeClosed {
		return nil
	}
	c.writeClosed = true
	c.sendEOFLocked()
	c.signalLocked()
	return nil
}

// sendEOFLocked queues the end of the stream for the peer, after what was
// sent, unless the peer's end is gone.
func (c *Conn) sendEOFLocked() {
	if !c.peer.closed && c.peer.resetErr == nil {
		c.peer.enqueueLocked(delivery{eof: true}, c.network.delayLocked())
	}
}

var _ transport.HalfCloser = (*Conn)(nil)

// resetLocked breaks this end after a fault; queued messages are lost.
func (c *Conn) resetLocked() {
	if c.closed || c.resetErr != nil {
		return
	}
	c.resetErr = fmt.Errorf("memnet: connection %s -> %s: %w", c.local.Addr, c.remote, ErrConnReset)
	c.network.stats.MessagesDropped += uint64(c.pendingMessagesLocked())
	c.inbound = nil
	c.signalLocked()
}

func (c *Conn) pendingMessagesLocked() int {
	count := 0
	for _, d := range c.inbound {
		if !d.eof {
			count++
		}
	}
	return count
}

func (c *Conn) signalLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}
