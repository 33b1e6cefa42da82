package hyparview

import (
	"errors"
	"fmt"

	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/wire"
)

// Wire type codes of the HyParView messages (range 0x01xx).
const (
	TypeJoin          wire.Type = 0x0101
	TypeForwardJoin   wire.Type = 0x0102
	TypeDisconnect    wire.Type = 0x0103
	TypeNeighbor      wire.Type = 0x0104
	TypeNeighborReply wire.Type = 0x0105
	TypeShuffle       wire.Type = 0x0106
	TypeShuffleReply  wire.Type = 0x0107
	TypeKeepalive     wire.Type = 0x0108
)

func init() {
	wire.ClaimRange(wire.RangeHyParView, "hyparview")
	wire.Register(TypeJoin, (*JoinMsg)(nil))
	wire.Register(TypeForwardJoin, (*ForwardJoinMsg)(nil))
	wire.Register(TypeDisconnect, (*DisconnectMsg)(nil))
	wire.Register(TypeNeighbor, (*NeighborMsg)(nil))
	wire.Register(TypeNeighborReply, (*NeighborReplyMsg)(nil))
	wire.Register(TypeShuffle, (*ShuffleMsg)(nil))
	wire.Register(TypeShuffleReply, (*ShuffleReplyMsg)(nil))
	wire.Register(TypeKeepalive, (*KeepaliveMsg)(nil))
}

// JoinMsg is the paper's JOIN: the sender asks the receiver, its contact, to
// take it into the overlay. The joiner is the authenticated sender.
type JoinMsg struct {
	_ struct{} `cbor:",toarray"`
}

// ForwardJoinMsg is the paper's FORWARDJOIN: a random walk announcing
// NewNode. The node where TTL reaches 0 (or whose only active peer is the
// sender) takes NewNode into its active view; the node where TTL equals PRWL
// adds it to its passive view.
type ForwardJoinMsg struct {
	_       struct{} `cbor:",toarray"`
	NewNode peer.Info
	TTL     uint8
}

// DisconnectMsg is the paper's DISCONNECT: the sender removed the receiver
// from its active view. The receiver does the same and keeps the sender as a
// passive peer, unless Leave says the sender is leaving the overlay.
type DisconnectMsg struct {
	_     struct{} `cbor:",toarray"`
	Leave bool
}

// NeighborMsg is the paper's NEIGHBOR: the sender asks to enter the
// receiver's active view. A high-priority request (sent by a node whose
// active view is empty, or to a node that joined through it) is always
// accepted, evicting a random active peer if needed; a low-priority one only
// when the receiver's active view has room.
type NeighborMsg struct {
	_            struct{} `cbor:",toarray"`
	HighPriority bool
}

// NeighborReplyMsg answers a NeighborMsg: Accept says the receiver is now
// in the sender's active view.
type NeighborReplyMsg struct {
	_      struct{} `cbor:",toarray"`
	Accept bool
}

// ShuffleMsg is the paper's SHUFFLE: a random walk started by Origin
// carrying some of its active (ka) and passive (kp) peers. The node where
// the walk ends answers Origin directly with a ShuffleReplyMsg and merges
// Origin and Peers into its passive view.
type ShuffleMsg struct {
	_      struct{} `cbor:",toarray"`
	Origin peer.Info
	TTL    uint8
	Peers  []peer.Info
}

// ShuffleReplyMsg is the paper's SHUFFLEREPLY: passive peers of the node
// where a shuffle walk ended, as many as the shuffle carried (counting its
// origin).
type ShuffleReplyMsg struct {
	_     struct{} `cbor:",toarray"`
	Peers []peer.Info
}

// KeepaliveMsg checks that an idle active link is alive. A request (Reply
// false) is answered with a reply; a request from a peer that is not in the
// receiver's active view is answered with a DisconnectMsg, so a one-sided
// link is closed.
type KeepaliveMsg struct {
	_     struct{} `cbor:",toarray"`
	Reply bool
}

// errMalformed is wrapped by the validation errors below.
var errMalformed = errors.New("hyparview: malformed message")

// checkInfo validates a peer descriptor received from the network. The
// descriptor may name this node (lists do); callers skip it.
func checkInfo(info peer.Info) error {
	if info.ID.IsZero() {
		return fmt.Errorf("%w: zero peer ID", errMalformed)
	}
	if info.Addr == "" || len(info.Addr) > MaxAddrLen {
		return fmt.Errorf("%w: peer %s address of %d bytes (limit %d)", errMalformed, info.ID.Short(), len(info.Addr), MaxAddrLen)
	}
	return nil
}

// checkList validates a list of peer descriptors of at most limit entries.
func checkList(peers []peer.Info, limit int) error {
	if len(peers) > limit {
		return fmt.Errorf("%w: list of %d peers (limit %d)", errMalformed, len(peers), limit)
	}
	for _, info := range peers {
		if err := checkInfo(info); err != nil {
			return err
		}
	}
	return nil
}
