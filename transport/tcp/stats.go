package tcp

import (
	"net"
	"sync/atomic"
)

// Stats is a snapshot of a transport's counters since Listen.
type Stats struct {
	// HandshakesAccepted counts completed handshakes, inbound and outbound.
	HandshakesAccepted uint64
	// HandshakesRefused counts failed handshakes, inbound and outbound; the
	// Refused* fields split it by reason.
	HandshakesRefused uint64
	// RefusedBadSecret counts peers that failed the cluster secret check.
	RefusedBadSecret uint64
	// RefusedBadIdentity counts peers whose identity proof was invalid.
	RefusedBadIdentity uint64
	// RefusedTimeout counts handshakes that did not finish in time (an
	// inbound one whose first message did not come within
	// FirstMessageTimeout included).
	RefusedTimeout uint64
	// RefusedClosedByPeer counts handshakes the peer ended by closing or
	// resetting the connection: a peer with another cluster secret after
	// message 1, a crashed peer, a client that connects and hangs up.
	RefusedClosedByPeer uint64
	// RefusedProtocol counts handshakes whose messages were malformed: a
	// peer speaking another protocol, or garbage.
	RefusedProtocol uint64
	// RefusedOverload counts inbound connections closed at once because
	// MaxPendingHandshakes handshakes were in progress (or all the slots
	// not reserved for members, for an address that is not one).
	RefusedOverload uint64
	// RefusedPerAddress counts inbound connections closed at once because
	// MaxHandshakesPerAddr handshakes from their source address were in
	// progress.
	RefusedPerAddress uint64
	// ConnsOverLimit counts connections refused because MaxConns were open:
	// inbound ones closed before their handshake, and failed dials.
	ConnsOverLimit uint64
	// ConnsOverPeerLimit counts connections closed after their handshake
	// because MaxConnsPerPeer connections to that peer were open.
	ConnsOverPeerLimit uint64
	// ConnsOverBufferLimit counts connections closed because a message
	// arriving on them waited FrameTimeout for room in MaxBufferedBytes.
	ConnsOverBufferLimit uint64
	// FrameTimeouts counts connections closed because a message did not
	// arrive whole within FrameTimeout of its length.
	FrameTimeouts uint64
	// FramesIn counts application messages received.
	FramesIn uint64
	// FramesOut counts application messages sent (queued for the socket).
	FramesOut uint64
	// BytesIn counts bytes read from sockets, handshakes included.
	BytesIn uint64
	// BytesOut counts bytes written to sockets, handshakes included.
	BytesOut uint64
	// Reads and Writes count the read and write system calls on sockets,
	// handshakes included: FramesOut / Writes is how many messages a write
	// carries on average (frames queued together leave in one write).
	Reads, Writes uint64
	// MalformedFrames counts connections closed for a malformed frame: an
	// announced length over MaxFrameSize, a failed authentication or a
	// truncated frame.
	MalformedFrames uint64
}

// counters are the live, atomic counterparts of Stats.
type counters struct {
	handshakesAccepted atomic.Uint64
	refusedBadSecret   atomic.Uint64
	refusedBadIdentity atomic.Uint64
	refusedTimeout     atomic.Uint64
	refusedClosed      atomic.Uint64
	refusedProtocol    atomic.Uint64
	refusedOverload    atomic.Uint64
	refusedPerAddress  atomic.Uint64
	connsOverLimit     atomic.Uint64
	connsOverPeerLimit atomic.Uint64
	connsOverBuffer    atomic.Uint64
	frameTimeouts      atomic.Uint64
	framesIn           atomic.Uint64
	framesOut          atomic.Uint64
	bytesIn            atomic.Uint64
	bytesOut           atomic.Uint64
	reads, writes      atomic.Uint64
	malformedFrames    atomic.Uint64
}

func (c *counters) refuse(reason refuseReason) {
	switch reason {
	case reasonBadSecret:
		c.refusedBadSecret.Add(1)
	case reasonBadIdentity:
		c.refusedBadIdentity.Add(1)
	case reasonTimeout:
		c.refusedTimeout.Add(1)
	case reasonClosedByPeer:
		c.refusedClosed.Add(1)
	case reasonOverload:
		c.refusedOverload.Add(1)
	case reasonPerAddress:
		c.refusedPerAddress.Add(1)
	case reasonConnLimit:
		c.connsOverLimit.Add(1)
	case reasonPeerLimit:
		c.connsOverPeerLimit.Add(1)
	case reasonBufferLimit:
		c.connsOverBuffer.Add(1)
	case reasonFrameTimeout:
		c.frameTimeouts.Add(1)
	case reasonMalformed:
		c.malformedFrames.Add(1)
	default:
		c.refusedProtocol.Add(1)
	}
}

func (c *counters) snapshot() Stats {
	s := Stats{
		HandshakesAccepted:   c.handshakesAccepted.Load(),
		RefusedBadSecret:     c.refusedBadSecret.Load(),
		RefusedBadIdentity:   c.refusedBadIdentity.Load(),
		RefusedTimeout:       c.refusedTimeout.Load(),
		RefusedClosedByPeer:  c.refusedClosed.Load(),
		RefusedProtocol:      c.refusedProtocol.Load(),
		RefusedOverload:      c.refusedOverload.Load(),
		RefusedPerAddress:    c.refusedPerAddress.Load(),
		ConnsOverLimit:       c.connsOverLimit.Load(),
		ConnsOverPeerLimit:   c.connsOverPeerLimit.Load(),
		ConnsOverBufferLimit: c.connsOverBuffer.Load(),
		FrameTimeouts:        c.frameTimeouts.Load(),
		FramesIn:             c.framesIn.Load(),
		FramesOut:            c.framesOut.Load(),
		BytesIn:              c.bytesIn.Load(),
		BytesOut:             c.bytesOut.Load(),
		Reads:                c.reads.Load(),
		Writes:               c.writes.Load(),
		MalformedFrames:      c.malformedFrames.Load(),
	}
	s.HandshakesRefused = s.RefusedBadSecret + s.RefusedBadIdentity + s.RefusedTimeout + s.RefusedClosedByPeer +
		s.RefusedProtocol + s.RefusedOverload + s.RefusedPerAddress
	return s
}

// countingConn counts the bytes that cross a socket.
type countingConn struct {
	net.Conn
	stats *counters
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.stats.reads.Add(1)
	c.stats.bytesIn.Add(uint64(n))
	return n, err
}

// CloseWrite shuts down the sending side of the socket, when it has one.
func (c *countingConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.stats.writes.Add(1)
	c.stats.bytesOut.Add(uint64(n))
	return n, err
}
