package gossip

import (
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/plumtree"
	"github.com/p2p-go/p2p/wire"
)

// Wire type codes of this package's messages.
const (
	TypeDirect     wire.Type = 0x0601
	TypeProbe      wire.Type = 0x0602
	TypeProbeReply wire.Type = 0x0603
	TypeSync       wire.Type = 0x0604
	TypeVouch      wire.Type = 0x0605
)

func init() {
	wire.ClaimRange(wire.RangeMembership, "gossip")
	wire.Register(TypeDirect, (*DirectMessage)(nil))
	wire.Register(TypeProbe, (*Probe)(nil))
	wire.Register(TypeProbeReply, (*ProbeReply)(nil))
	wire.Register(TypeSync, (*Sync)(nil))
	wire.Register(TypeVouch, (*Vouch)(nil))
}

// DirectMessage carries a payload to one peer, outside the broadcast tree.
type DirectMessage struct {
	_       struct{} `cbor:",toarray"`
	Topic   uint8
	Payload []byte
}

// Probe asks a peer whether it is alive. Recent lists a few broadcasts the
// prober delivered a while ago (see doc.go, Islands): a receiver that has
// not seen one of them is not in the prober's part of the overlay.
//
// Claim, when not zero, is the incarnation at which another node claimed the
// receiver suspect or dead: the prober is checking that claim, and the
// receiver refutes it (see suspicion.go).
type Probe struct {
	_      struct{} `cbor:",toarray"`
	Nonce  uint64
	Recent []RecentBroadcast
	Claim  uint64
}

// ProbeReply answers a Probe, with the replier's own Recent broadcasts.
type ProbeReply struct {
	_      struct{} `cbor:",toarray"`
	Nonce  uint64
	Recent []RecentBroadcast
}

// RecentBroadcast names a broadcast its sender delivered AgeMillis
// milliseconds ago (a duration, so that clocks need not agree).
type RecentBroadcast struct {
	_         struct{} `cbor:",toarray"`
	ID        plumtree.MessageID
	AgeMillis uint32
}

// Sync reconciles member lists, push-pull. A Sync without Full carries only
// the digest of the sender's list, by bucket (members grouped by the first
// bits of their IDs: 8 bytes a bucket, a power of two from 1 to 1,024
// buckets); a node whose list differs answers with its entries of the
// buckets that differ and its own digest at the same bucket count (Full),
// which is answered with the entries of the buckets that still differ (Full
// and Reply), which is not answered again. A digest-less Sync is answered
// with the whole list, and a Full one without a digest with the other whole
// list.
type Sync struct {
	_       struct{} `cbor:",toarray"`
	Full    bool
	Reply   bool
	Digest  []byte
	Entries []Entry
}

// Member states carried by entries and events.
const (
	StateAlive uint8 = 1
	StateDead  uint8 = 2
	StateLeft  uint8 = 3
	// StateSuspect is a claim, never a stored state: a node whose probe
	// went unanswered once tells the others, which probe the member
	// themselves (see suspicion.go).
	StateSuspect uint8 = 4
)

// Entry is one member as a node knows it: the record the member signed
// (its ID and address, incarnation, name and tags, and whether it left),
// with the state a node holds it in. PublicKey is the member's ed25519 key,
// whose hash is its ID; Signature is the member's signature of the record
// with State alive (or left, for a member that left): a dead or suspect
// claim carries the signature of the alive record it is about (see
// records.go). Witnesses are other members' introductions of the member at
// its address, which it carries outside what it signs (see
// introductions.go).
type Entry struct {
	_           struct{} `cbor:",toarray"`
	Peer        peer.Info
	Incarnation uint64
	State       uint8
	Name        string
	Tags        map[string]string
	PublicKey   []byte
	Signature   []byte
	Witnesses   []Witness
}

// membershipEvent is the body of a topic-0 broadcast. Missed, when set,
// lists broadcasts of another island that the sender found it had missed and
// bridged to (see doc.go, Islands): its own island need not act on them again.
type membershipEvent struct {
	_      struct{} `cbor:",toarray"`
	Entry  Entry
	Missed []plumtree.MessageID
}
