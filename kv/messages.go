package kv

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/p2p-go/p2p/wire"
)

// Message type codes (the 0x04xx range belongs to package kv).
const (
	// TypeUpdate is the code of [Update], the broadcast payload.
	TypeUpdate wire.Type = 0x0401
	// TypeSyncRoot is the code of [SyncRoot].
	TypeSyncRoot wire.Type = 0x0402
	// TypeSyncNodes is the code of [SyncNodes].
	TypeSyncNodes wire.Type = 0x0403
	// TypeSyncRecords is the code of [SyncRecords].
	TypeSyncRecords wire.Type = 0x0404
	// TypeSyncSummary is the code of [SyncSummary].
	TypeSyncSummary wire.Type = 0x0405
)

// Bounds on messages. Senders cut their messages to fit; receivers refuse
// messages that exceed them.
const (
	// MaxUpdateRecords bounds the records of one Update.
	MaxUpdateRecords = 64
	// MaxSyncParents bounds the parents of one SyncNodes (1,024 parents
	// carry 128 KiB of hashes).
	MaxSyncParents = 1024
	// MaxSyncNodes bounds the nodes of one SyncSummary.
	MaxSyncNodes = 4096
	// MaxSummaryEntries bounds the entries of one SyncSummary (256 KiB).
	MaxSummaryEntries = 8192
	// MaxWantKeys bounds the keys one SyncRecords asks for.
	MaxWantKeys = 8192
	// MaxSyncRecords bounds the records of one SyncRecords.
	MaxSyncRecords = 1024
	// MaxSyncBytes is the size senders aim to keep a SyncRecords under; a
	// single record may exceed it, up to MaxKeyLen + MaxValueLen plus a
	// few dozen bytes, well below wire.DefaultMaxFrameSize.
	MaxSyncBytes = 256 << 10
)

// ErrBadMessage is returned for a decoded message whose fields break the
// protocol's rules.
var ErrBadMessage = errors.New("kv: bad message")

func init() {
	wire.ClaimRange(wire.RangeKV, "kv")
	wire.Register(TypeUpdate, (*Update)(nil))
	wire.Register(TypeSyncRoot, (*SyncRoot)(nil))
	wire.Register(TypeSyncNodes, (*SyncNodes)(nil))
	wire.Register(TypeSyncRecords, (*SyncRecords)(nil))
	wire.Register(TypeSyncSummary, (*SyncSummary)(nil))
}

// Update carries writes pushed to every member through the Broadcaster: the
// payload of a [Broadcast] output and of a [FromBroadcast] input.
type Update struct {
	_       struct{} `cbor:",toarray"`
	Records []Record
}

// SyncRoot opens an anti-entropy round: the initiator's root hash. A peer
// whose root differs answers with [SyncNodes] for level 1 (or a
// [SyncSummary] when it holds few records); an equal root ends the round.
type SyncRoot struct {
	_    struct{} `cbor:",toarray"`
	Root [32]byte
}

// SyncNodes carries the sender's hashes of the children, at Level, of the
// nodes listed in Parents (at Level-1): treeFanout hashes of wireHashLen
// bytes per parent, in order. The receiver compares them with its own and
// answers for the children that differ: with SyncNodes for Level+1, or with
// a [SyncSummary] of those children when they are leaves or hold few records.
type SyncNodes struct {
	_       struct{} `cbor:",toarray"`
	Level   uint8
	Parents []uint32
	Hashes  []byte
}

// SyncSummary lists the sender's records under some tree nodes: for each of
// Nodes (at Level), one summaryEntryLen-byte entry per record under it, in
// Entries. The receiver compares them with its own records under those
// nodes and answers with [SyncRecords]: its records that are newer or that
// the sender lacks, and the keys whose sender's record is newer (WantKeys).
type SyncSummary struct {
	_       struct{} `cbor:",toarray"`
	Level   uint8
	Nodes   []uint32
	Entries []byte
}

// summaryEntryLen is the size of a summary entry: the key hash (8 bytes),
// the version's wall time (8) and logical counter (4), the first 8 bytes of
// the writer ID, and the first 4 bytes of the record hash (which tells
// apart records with equal versions, written only by a faulty writer).
const summaryEntryLen = 32

// summaryEntry is the decoded form of one entry of a SyncSummary.
type summaryEntry struct {
	keyHash    uint64
	time       HLC
	writer     uint64
	recordHash uint32
}

func makeSummaryEntry(key string, e entry) summaryEntry {
	return summaryEntry{
		keyHash:    keyHash(key),
		time:       HLC{Wall: e.version.Time.Wall, Logical: e.version.Time.Logical},
		writer:     binary.BigEndian.Uint64(e.version.Writer[:8]),
		recordHash: binary.BigEndian.Uint32(e.hash[:4]),
	}
}

func (e summaryEntry) append(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, e.keyHash)
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.time.Wall))
	dst = binary.BigEndian.AppendUint32(dst, e.time.Logical)
	dst = binary.BigEndian.AppendUint64(dst, e.writer)
	return binary.BigEndian.AppendUint32(dst, e.recordHash)
}

func parseSummaryEntry(b []byte) summaryEntry {
	return summaryEntry{
		keyHash:    binary.BigEndian.Uint64(b),
		time:       HLC{Wall: int64(binary.BigEndian.Uint64(b[8:])), Logical: binary.BigEndian.Uint32(b[16:])},
		writer:     binary.BigEndian.Uint64(b[20:]),
		recordHash: binary.BigEndian.Uint32(b[28:]),
	}
}

// compare orders the versions of two entries (the writer by its prefix).
func (e summaryEntry) compare(other summaryEntry) int {
	if c := e.time.Compare(other.time); c != 0 {
		return c
	}
	switch {
	case e.writer < other.writer:
		return -1
	case e.writer > other.writer:
		return 1
	}
	return 0
}

// SyncRecords carries records that the receiver lacks or holds older
// versions of, and WantKeys: key hashes (8 bytes each) whose records the
// sender asks for. The receiver merges Records and answers WantKeys with
// its records of those keys (an answer has no WantKeys, so a round always
// ends).
type SyncRecords struct {
	_        struct{} `cbor:",toarray"`
	WantKeys []byte
	Records  []Record
}

// decodePayload decodes a broadcast payload into an Update and validates it.
func decodePayload(payload []byte) (*Update, error) {
	msg, err := wire.Unmarshal(payload)
	if err != nil {
		return nil, err
	}
	update, ok := msg.(*Update)
	if !ok {
		return nil, fmt.Errorf("%w: broadcast payload is %T, want *kv.Update", ErrBadMessage, msg)
	}
	if err := update.validate(); err != nil {
		return nil, err
	}
	return update, nil
}

func (m *Update) validate() error {
	if len(m.Records) > MaxUpdateRecords {
		return fmt.Errorf("%w: update has %d records, limit %d", ErrBadMessage, len(m.Records), MaxUpdateRecords)
	}
	return nil
}

func (m *SyncNodes) validate() error {
	if m.Level < 1 || m.Level > treeDepth {
		return fmt.Errorf("%w: sync level %d outside 1..%d", ErrBadMessage, m.Level, treeDepth)
	}
	if len(m.Parents) == 0 || len(m.Parents) > MaxSyncParents {
		return fmt.Errorf("%w: sync nodes has %d parents, want 1..%d", ErrBadMessage, len(m.Parents), MaxSyncParents)
	}
	if want := len(m.Parents) * treeFanout * wireHashLen; len(m.Hashes) != want {
		return fmt.Errorf("%w: sync nodes has %d hash bytes, want %d", ErrBadMessage, len(m.Hashes), want)
	}
	return checkIndexes("parent", m.Parents, levelSize(int(m.Level)-1))
}

func (m *SyncRecords) validate() error {
	if len(m.WantKeys)%8 != 0 || len(m.WantKeys)/8 > MaxWantKeys {
		return fmt.Errorf("%w: sync records wants %d bytes of key hashes, want a multiple of 8 up to %d", ErrBadMessage, len(m.WantKeys), 8*MaxWantKeys)
	}
	if len(m.Records) > MaxSyncRecords {
		return fmt.Errorf("%w: sync records has %d records, limit %d", ErrBadMessage, len(m.Records), MaxSyncRecords)
	}
	return nil
}

func (m *SyncSummary) validate() error {
	if m.Level > treeDepth {
		return fmt.Errorf("%w: sync summary level %d above %d", ErrBadMessage, m.Level, treeDepth)
	}
	if len(m.Nodes) == 0 || len(m.Nodes) > MaxSyncNodes {
		return fmt.Errorf("%w: sync summary has %d nodes, want 1..%d", ErrBadMessage, len(m.Nodes), MaxSyncNodes)
	}
	if len(m.Entries)%summaryEntryLen != 0 || len(m.Entries)/summaryEntryLen > MaxSummaryEntries {
		return fmt.Errorf("%w: sync summary has %d bytes of entries, want a multiple of %d up to %d entries", ErrBadMessage, len(m.Entries), summaryEntryLen, MaxSummaryEntries)
	}
	return checkIndexes("summary node", m.Nodes, levelSize(int(m.Level)))
}

// checkIndexes requires node indexes to be strictly increasing (so none is
// repeated) and below limit.
func checkIndexes(what string, indexes []uint32, limit uint32) error {
	for i, index := range indexes {
		if index >= limit {
			return fmt.Errorf("%w: %s %d out of range (limit %d)", ErrBadMessage, what, index, limit)
		}
		if i > 0 && index <= indexes[i-1] {
			return fmt.Errorf("%w: %s %d not after %d", ErrBadMessage, what, index, indexes[i-1])
		}
	}
	return nil
}
