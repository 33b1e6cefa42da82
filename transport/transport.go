package transport

import (
	"context"
	"errors"

	"github.com/p2p-go/p2p/peer"
)

var (
	// ErrClosed is returned by operations on a closed transport or connection.
	ErrClosed = errors.New("transport: closed")
	// ErrRefused is returned when a peer refused us or could not be
	// authenticated: a wrong cluster secret, a bad identity proof, a peer
	// speaking another protocol. A handshake cut by a reset or a timeout (a
	// crashed or unreachable peer) is not a refusal.
	ErrRefused = errors.New("transport: handshake refused")
	// ErrTooLarge is returned for a message over the maximum frame size.
	ErrTooLarge = errors.New("transport: message too large")
	// ErrWouldBlock is returned by TrySend when the message cannot be
	// queued without waiting.
	ErrWouldBlock = errors.New("transport: send would block")
)

// TrySender is implemented by connections that can queue a message without
// ever waiting: TrySend behaves as Send, except that it returns ErrWouldBlock
// at once where Send would wait for buffer space. A runtime uses it to hand a
// message to the transport from its own loop, saving a goroutine hand-off per
// message.
type TrySender interface {
	TrySend(msg []byte) error
}

// DeferredSender is implemented by connections that can hold messages back
// so that several leave in one write: a runtime sending many messages
// to the same peer while it handles a burst of input queues them with
// TrySendDeferred and calls Flush once the burst is over, saving a system
// call (and a wake-up of the peer's reader) per message.
type DeferredSender interface {
	// TrySendDeferred queues msg like TrySender.TrySend (it never waits,
	// and returns ErrWouldBlock when the buffer is full), but may leave it
	// in the connection's buffer until Flush, a later Send or TrySend,
	// CloseWrite or Close, or until enough bytes wait to be worth a write
	// of their own. Messages keep their order whichever method queued
	// them.
	TrySendDeferred(msg []byte) error
	// Flush starts handing what TrySendDeferred queued to the network. It
	// does not wait for the write.
	Flush()
}

// BufferedReceiver is implemented by connections that can tell whether
// Recv would return without waiting for the network. A runtime uses it to
// take every message that one read brought in before handing them on.
type BufferedReceiver interface {
	// Buffered reports whether a whole message has arrived that Recv has
	// not yet returned: the next Recv returns it (or fails on it) without
	// waiting. Call it only from the goroutine that calls Recv.
	Buffered() bool
}

// HalfCloser is implemented by connections that can stop sending while they
// keep receiving. CloseWrite sends what is queued, then tells the peer that
// nothing more will come (for TCP, a FIN); Send fails afterwards, while Recv
// keeps returning what the peer sent until the peer closes its side. A
// runtime closes an idle connection this way so that a message the peer
// sent meanwhile is still received rather than lost. Close must still be
// called.
type HalfCloser interface {
	CloseWrite() error
}

// Transport dials and accepts authenticated connections.
type Transport interface {
	// Dial opens an authenticated connection to the node listening at addr.
	Dial(ctx context.Context, addr string) (Conn, error)
	// Accept waits for the next authenticated inbound connection.
	// It returns ErrClosed once the transport is closed.
	Accept(ctx context.Context) (Conn, error)
	// LocalAddr returns the address peers should dial to reach this node.
	LocalAddr() string
	// Close stops listening and closes every connection; it may be called
	// more than once.
	Close() error
}

// Conn is an authenticated, message-oriented connection to one peer.
// Send may be called from one goroutine while Recv is called from another.
type Conn interface {
	// Send transmits one message. It returns ErrTooLarge for a message over
	// the maximum frame size, without closing the connection. Neither Send
	// nor TrySend nor TrySendDeferred keeps msg after it returns: the
	// caller may reuse it, and may hand the same bytes to several
	// connections.
	Send(ctx context.Context, msg []byte) error
	// Recv blocks until the next message arrives, the peer goes away or the
	// connection is closed (Close unblocks it).
	Recv() ([]byte, error)
	// Remote returns the peer's authenticated ID and its advertised address.
	Remote() peer.Info
	// Close closes the connection; it may be called more than once.
	Close() error
}
