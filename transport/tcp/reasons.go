package tcp

import "errors"

// refuseReason classifies why a handshake failed, or why a connection was
// refused or closed for a limit or a bad frame.
type refuseReason int

const (
	reasonBadSecret refuseReason = iota
	reasonBadIdentity
	reasonTimeout
	reasonClosedByPeer
	reasonProtocol
	reasonOverload
	reasonPerAddress
	reasonConnLimit
	reasonPeerLimit
	reasonBufferLimit
	reasonFrameTimeout
	reasonMalformed
)

// numReasons is the number of refuseReason values.
const numReasons = int(reasonMalformed) + 1

func (r refuseReason) String() string {
	switch r {
	case reasonBadSecret:
		return "bad secret"
	case reasonBadIdentity:
		return "bad identity"
	case reasonTimeout:
		return "timeout"
	case reasonClosedByPeer:
		return "closed by peer"
	case reasonOverload:
		return "too many pending handshakes"
	case reasonPerAddress:
		return "too many pending handshakes from one address"
	case reasonConnLimit:
		return "too many connections"
	case reasonPeerLimit:
		return "too many connections to one peer"
	case reasonBufferLimit:
		return "too many bytes buffered"
	case reasonFrameTimeout:
		return "message too slow"
	case reasonMalformed:
		return "malformed frame"
	default:
		return "protocol error"
	}
}

// label is the reason's Prometheus label value and log key.
func (r refuseReason) label() string {
	switch r {
	case reasonBadSecret:
		return "bad_secret"
	case reasonBadIdentity:
		return "bad_identity"
	case reasonTimeout:
		return "timeout"
	case reasonClosedByPeer:
		return "closed_by_peer"
	case reasonOverload:
		return "overload"
	case reasonPerAddress:
		return "per_address"
	case reasonConnLimit:
		return "conn_limit"
	case reasonPeerLimit:
		return "peer_limit"
	case reasonBufferLimit:
		return "buffer_limit"
	case reasonFrameTimeout:
		return "frame_timeout"
	case reasonMalformed:
		return "malformed"
	default:
		return "protocol"
	}
}

// errPeerHungUp marks an initiator's handshake that the responder ended
// cleanly after message 1: what a responder with another cluster secret
// does, so Dial reports it as transport.ErrRefused.
var errPeerHungUp = errors.New("handshake ended by the peer")

// firstMessageSignal is implemented by the responder's connection wrapper:
// the handshake calls firstMessageRead with message 1 once it has arrived
// and authenticated, so that the wrapper can take a handshake slot (or
// refuse the connection, with the error returned) and move from the short
// first-message deadline to the whole handshake's.
type firstMessageSignal interface {
	firstMessageRead(msg1 []byte) error
}
