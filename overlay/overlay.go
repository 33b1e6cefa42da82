package overlay

import (
	"errors"
	"time"

	"github.com/p2p-go/p2p/peer"
)

// Core is a protocol state machine without I/O.
type Core interface {
	// Step feeds one input to the core at time now. Inputs are the types of
	// this package ([Received], [LinkDown], [Tick]) or requests defined by
	// the core's own package. Step must not block and never panics on what a
	// peer sent.
	Step(now time.Time, input any)
	// Drain appends the outputs produced since the last call to dst and
	// returns it. Outputs are [Send], [Connect], [Disconnect], or
	// deliveries defined by the core's own package.
	Drain(dst []any) []any
	// NextDeadline returns when the core next needs a [Tick]; ok is false
	// when it has no timer pending.
	NextDeadline() (deadline time.Time, ok bool)
}

// Received is the input for a message that arrived from a peer. Msg is a
// pointer to a message type registered with package wire.
type Received struct {
	From peer.Info
	Msg  any
}

// LinkDown is the input telling a core that it can no longer reach a peer: a
// link it asked to keep ([Connect]) broke, or a [Send] could not be delivered
// because the peer could not be dialled.
type LinkDown struct {
	// Peer is the peer that cannot be reached; it is the zero ID when a Send
	// to an address whose owner was unknown (a bootstrap contact) failed.
	Peer peer.ID
	// Addr is the address the driver tried, when known.
	Addr string
	Err  error
}

// ErrDialFailed is wrapped by a [LinkDown]'s Err when the driver could not
// open a connection to the peer at all (refused, reset, unreachable, timed
// out), as opposed to a link that closed: evidence that the peer may be down.
var ErrDialFailed = errors.New("overlay: dial failed")

// Tick is the input that lets a core act on its timers.
type Tick struct{}

// Send is the output asking the driver to deliver Msg to To. The driver dials
// To.Addr when it has no connection to To.ID; if that fails it steps the core
// with a [LinkDown].
type Send struct {
	To  peer.Info
	Msg any
}

// Connect is the output asking the driver to keep a link to Peer open (a
// HyParView active link). When the link fails the driver steps the core with a
// [LinkDown] for Peer.
type Connect struct {
	Peer peer.Info
}

// Disconnect is the output telling the driver that the link to Peer is no
// longer needed. The driver closes it once queued messages have been sent.
type Disconnect struct {
	Peer peer.ID
}
