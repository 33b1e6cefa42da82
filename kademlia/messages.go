package kademlia

import (
	"errors"

	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/wire"
)

// Message type codes registered with package wire (range 0x03xx).
const (
	TypePing           wire.Type = 0x0301
	TypePong           wire.Type = 0x0302
	TypeFindNode       wire.Type = 0x0303
	TypeFindNodeReply  wire.Type = 0x0304
	TypeFindValue      wire.Type = 0x0305
	TypeFindValueReply wire.Type = 0x0306
	TypeStore          wire.Type = 0x0307
	TypeStoreReply     wire.Type = 0x0308
	TypeBroadcast      wire.Type = 0x0309
	TypeDirect         wire.Type = 0x030a
)

func init() {
	wire.ClaimRange(wire.RangeKademlia, "kademlia")
	wire.Register(TypePing, (*Ping)(nil))
	wire.Register(TypePong, (*Pong)(nil))
	wire.Register(TypeFindNode, (*FindNode)(nil))
	wire.Register(TypeFindNodeReply, (*FindNodeReply)(nil))
	wire.Register(TypeFindValue, (*FindValue)(nil))
	wire.Register(TypeFindValueReply, (*FindValueReply)(nil))
	wire.Register(TypeStore, (*Store)(nil))
	wire.Register(TypeStoreReply, (*StoreReply)(nil))
	wire.Register(TypeBroadcast, (*BroadcastMessage)(nil))
	wire.Register(TypeDirect, (*DirectMessage)(nil))
}

// Ping is the PING RPC: it asks a contact to prove it is alive. RPC is the
// request ID its reply echoes.
type Ping struct {
	_   struct{} `cbor:",toarray"`
	RPC uint64
}

// Pong answers a Ping.
type Pong struct {
	_   struct{} `cbor:",toarray"`
	RPC uint64
}

// FindNode is the FIND_NODE RPC: it asks for the contacts the receiver knows
// closest to Target.
type FindNode struct {
	_      struct{} `cbor:",toarray"`
	RPC    uint64
	Target peer.ID
}

// FindNodeReply answers FindNode with at most k contacts.
type FindNodeReply struct {
	_        struct{} `cbor:",toarray"`
	RPC      uint64
	Contacts []peer.Info
}

// FindValue is the FIND_VALUE RPC: it asks for the record stored under Key,
// or the contacts closest to Key when the receiver has none.
type FindValue struct {
	_   struct{} `cbor:",toarray"`
	RPC uint64
	Key peer.ID
}

// FindValueReply answers FindValue with the record (Record non-nil) or with
// closer contacts.
type FindValueReply struct {
	_        struct{} `cbor:",toarray"`
	RPC      uint64
	Record   *WireRecord
	Contacts []peer.Info
}

// Store is the STORE RPC: it asks the receiver to keep Record.
type Store struct {
	_      struct{} `cbor:",toarray"`
	RPC    uint64
	Record WireRecord
}

// StoreReply answers Store: Code is StoreOK or the reason the record was
// refused (see [StoreCode]).
type StoreReply struct {
	_    struct{} `cbor:",toarray"`
	RPC  uint64
	Code StoreCode
}

// BroadcastMessage carries a broadcast over the routing table (El-Ansary et
// al. 2003). The receiver is responsible for the part of the ID space that
// shares its first Depth bits: it forwards the message to one contact in each
// of its buckets numbered Depth or more.
type BroadcastMessage struct {
	_ struct{} `cbor:",toarray"`
	// ID tells broadcasts of one origin apart, for duplicate suppression.
	ID uint64
	// Origin is the node that started the broadcast, as it claims.
	Origin peer.ID
	// Depth is the common prefix length of the receiver's subtree.
	Depth uint16
	// Hops is the number of links the message crossed before this one.
	Hops uint8
	// Payload is the application's message.
	Payload []byte
}

// DirectMessage carries an application payload to one peer.
type DirectMessage struct {
	_       struct{} `cbor:",toarray"`
	Payload []byte
}

// StoreCode is the outcome of a STORE, sent back in StoreReply.
type StoreCode uint8

// Store outcomes.
const (
	StoreOK StoreCode = iota
	StoreMalformed
	StoreForged
	StoreStale
	StoreHashMismatch
	StoreKeyMismatch
	StoreTooLarge
	StoreFull
	StoreRateLimited
)

// Err returns the sentinel error for c, nil for StoreOK.
func (c StoreCode) Err() error {
	switch c {
	case StoreOK:
		return nil
	case StoreMalformed:
		return ErrMalformed
	case StoreForged:
		return ErrForged
	case StoreStale:
		return ErrStale
	case StoreHashMismatch:
		return ErrHashMismatch
	case StoreKeyMismatch:
		return ErrKeyMismatch
	case StoreTooLarge:
		return ErrTooLarge
	case StoreFull:
		return ErrStoreFull
	case StoreRateLimited:
		return ErrRateLimited
	}
	return ErrMalformed
}

// codeOf maps an error from record validation or the store to its code.
func codeOf(err error) StoreCode {
	for _, c := range []StoreCode{StoreForged, StoreStale, StoreHashMismatch, StoreKeyMismatch, StoreTooLarge, StoreFull, StoreRateLimited} {
		if errors.Is(err, c.Err()) {
			return c
		}
	}
	if err == nil {
		return StoreOK
	}
	return StoreMalformed
}
