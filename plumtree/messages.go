package plumtree

import (
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/wire"
)

// Wire type codes of the Plumtree messages (range 0x02xx).
const (
	// TypeGossip is the wire code of [Gossip].
	TypeGossip wire.Type = 0x0201
	// TypeIHave is the wire code of [IHave].
	TypeIHave wire.Type = 0x0202
	// TypeGraft is the wire code of [Graft].
	TypeGraft wire.Type = 0x0203
	// TypePrune is the wire code of [Prune].
	TypePrune wire.Type = 0x0204
	// TypeTree is the wire code of [Tree].
	TypeTree wire.Type = 0x0206
	// TypeSummary is the wire code of [Summary].
	TypeSummary wire.Type = 0x0205
)

func init() {
	wire.ClaimRange(wire.RangePlumtree, "plumtree")
	wire.Register(TypeGossip, (*Gossip)(nil))
	wire.Register(TypeIHave, (*IHave)(nil))
	wire.Register(TypeGraft, (*Graft)(nil))
	wire.Register(TypePrune, (*Prune)(nil))
	wire.Register(TypeTree, (*Tree)(nil))
	wire.Register(TypeSummary, (*Summary)(nil))
}

// MessageIDLen is the length of a message ID in bytes.
const MessageIDLen = 16

// MessageID identifies one broadcast message. It is encoded as a CBOR byte
// string of exactly [MessageIDLen] bytes; any other encoding is refused.
type MessageID [MessageIDLen]byte

// IsZero reports whether the ID is the zero value, which no message carries.
func (id MessageID) IsZero() bool { return id == MessageID{} }

// String returns the first 8 bytes of the ID in hexadecimal, for logs.
func (id MessageID) String() string { return hex.EncodeToString(id[:8]) }

// cborByteString16 is the CBOR head of a 16-byte byte string (major type 2).
const cborByteString16 = 0x40 | MessageIDLen

// ErrBadMessageID is returned when decoding a message ID that is not a byte
// string of exactly MessageIDLen bytes.
var ErrBadMessageID = errors.New("plumtree: malformed message ID")

// MarshalCBOR encodes the ID as a 16-byte CBOR byte string.
func (id MessageID) MarshalCBOR() ([]byte, error) {
	out := make([]byte, 0, 1+MessageIDLen)
	out = append(out, cborByteString16)
	return append(out, id[:]...), nil
}

// UnmarshalCBOR decodes a 16-byte CBOR byte string; shorter or longer
// strings, and any other CBOR item, are refused rather than padded or cut.
func (id *MessageID) UnmarshalCBOR(data []byte) error {
	if len(data) != 1+MessageIDLen || data[0] != cborByteString16 {
		return ErrBadMessageID
	}
	copy(id[:], data[1:])
	return nil
}

// Gossip carries a payload (the paper's GOSSIP message). It is pushed to
// eager peers, and sent in answer to a GRAFT.
type Gossip struct {
	_ struct{} `cbor:",toarray"`
	// ID identifies the message.
	ID MessageID
	// Round is the number of hops the message will have travelled when it
	// arrives: 1 for a neighbour of the origin.
	Round uint16
	// Origin is the node that broadcast the message.
	Origin peer.Info
	// Payload is the application's message.
	Payload []byte
	// SentAt is the origin's clock when it broadcast the message, in
	// milliseconds since the Unix epoch.
	SentAt int64
	// PublicKey and Signature are empty, or the origin's ed25519 public key
	// (whose hash is Origin.ID) and its signature of Origin, ID, SentAt and
	// Payload (see [Config.RequireSignatures]).
	PublicKey []byte
	Signature []byte
}

// Announcement is one entry of an IHAVE: a message ID and the hop count a
// payload fetched from the announcer would have.
type Announcement struct {
	_     struct{} `cbor:",toarray"`
	ID    MessageID
	Round uint16
}

// IHave announces messages the sender has (the paper's IHAVE), batched: one
// message carries every announcement gathered for the receiver during a
// batching interval, at most [MaxIDsPerMessage].
type IHave struct {
	_             struct{} `cbor:",toarray"`
	Announcements []Announcement
}

// Graft asks the receiver to make its link to the sender eager and to send
// the payloads of IDs (the paper's GRAFT). An empty IDs list only makes the
// link eager (used by the optimisation).
type Graft struct {
	_   struct{} `cbor:",toarray"`
	IDs []MessageID
}

// Summary lists messages whose payloads the sender keeps (its recovery
// window, oldest first), so that the receiver can GRAFT those it lacks. It is
// sent to every new neighbour, in as many messages of at most
// [MaxIDsPerMessage] entries as the window needs.
type Summary struct {
	_       struct{} `cbor:",toarray"`
	Entries []SummaryEntry
}

// SummaryEntry names one message of a [Summary] and its origin's send time
// (Unix milliseconds), so that a node can ignore messages sent before it
// started.
type SummaryEntry struct {
	_      struct{} `cbor:",toarray"`
	ID     MessageID
	SentAt int64
}

// Prune asks the receiver to make its link to the sender lazy (the paper's
// PRUNE).
type Prune struct {
	_ struct{} `cbor:",toarray"`
}

// ErrInvalidMessage is wrapped by the validation errors of received messages.
var ErrInvalidMessage = errors.New("plumtree: invalid message")

// validate checks every field a peer chose.
func (m *Gossip) validate(maxPayload int) error {
	switch {
	case m.ID.IsZero():
		return fmt.Errorf("%w: GOSSIP with zero message ID", ErrInvalidMessage)
	case m.Round == 0:
		return fmt.Errorf("%w: GOSSIP %v with round 0", ErrInvalidMessage, m.ID)
	case m.Origin.ID.IsZero():
		return fmt.Errorf("%w: GOSSIP %v with zero origin", ErrInvalidMessage, m.ID)
	case len(m.Origin.Addr) > MaxAddrLen:
		return fmt.Errorf("%w: GOSSIP %v origin address of %d bytes, limit %d", ErrInvalidMessage, m.ID, len(m.Origin.Addr), MaxAddrLen)
	case len(m.Payload) > maxPayload:
		return fmt.Errorf("%w: GOSSIP %v payload of %d bytes, limit %d", ErrInvalidMessage, m.ID, len(m.Payload), maxPayload)
	}
	return m.validateSignatureFields()
}

func (m *IHave) validate() error {
	if len(m.Announcements) == 0 || len(m.Announcements) > MaxIDsPerMessage {
		return fmt.Errorf("%w: IHAVE with %d announcements, want 1 to %d", ErrInvalidMessage, len(m.Announcements), MaxIDsPerMessage)
	}
	for _, a := range m.Announcements {
		if a.ID.IsZero() {
			return fmt.Errorf("%w: IHAVE with zero message ID", ErrInvalidMessage)
		}
		if a.Round == 0 {
			return fmt.Errorf("%w: IHAVE %v with round 0", ErrInvalidMessage, a.ID)
		}
	}
	return nil
}

func (m *Graft) validate() error {
	if len(m.IDs) > MaxIDsPerMessage {
		return fmt.Errorf("%w: GRAFT with %d IDs, limit %d", ErrInvalidMessage, len(m.IDs), MaxIDsPerMessage)
	}
	for _, id := range m.IDs {
		if id.IsZero() {
			return fmt.Errorf("%w: GRAFT with zero message ID", ErrInvalidMessage)
		}
	}
	return nil
}

func (m *Summary) validate() error {
	if len(m.Entries) == 0 || len(m.Entries) > MaxIDsPerMessage {
		return fmt.Errorf("%w: SUMMARY with %d entries, want 1 to %d", ErrInvalidMessage, len(m.Entries), MaxIDsPerMessage)
	}
	for _, e := range m.Entries {
		if e.ID.IsZero() {
			return fmt.Errorf("%w: SUMMARY with zero message ID", ErrInvalidMessage)
		}
	}
	return nil
}
