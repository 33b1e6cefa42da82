package kv

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/wire"
)

// Put is the input asking the store to set Key to Value. The store answers
// with a [Result] carrying ReqID.
type Put struct {
	ReqID uint64
	Key   string
	Value []byte
}

// Delete is the input asking the store to delete Key. The store answers with
// a [Result] carrying ReqID; deleting a key the store does not hold fails
// with ErrNotFound.
type Delete struct {
	ReqID uint64
	Key   string
}

// NeighborUp is the input telling the store that the overlay gained a
// neighbour (a node that joined, restarted or came back from a partition).
// The store reconciles with it at once.
type NeighborUp struct {
	Peer peer.Info
}

// NeighborDown is the input telling the store that a neighbour is gone.
type NeighborDown struct {
	Peer peer.ID
}

// FromBroadcast is the input for a payload the Broadcaster delivered: the
// Payload of some node's [Broadcast] output, possibly this node's own.
type FromBroadcast struct {
	From    peer.Info
	Payload []byte
}

// Broadcast is the output asking the driver to push Payload to every member
// through the Broadcaster.
type Broadcast struct {
	Payload []byte
}

// Result is the output answering a [Put] or [Delete]. Err is nil when the
// write was applied; Record is then the record written. A Result follows the
// write's [Persist] output, so a runtime that releases it only once that
// Persist is durable (see Persist) answers "durable here".
type Result struct {
	ReqID  uint64
	Record Record
	Err    error
}

// Changed is the output reporting a change applied to the store, for
// watchers: a local write (Local true) or a record learnt from a peer. A
// delete is a Record with Deleted set. Purging an expired tombstone is not a
// change.
type Changed struct {
	Record Record
	Local  bool
}

// Stats counts what a store did since it was created.
type Stats struct {
	// AntiEntropyRounds counts the rounds this node started.
	AntiEntropyRounds uint64
	// AntiEntropyMessages and AntiEntropyBytes count the anti-entropy
	// messages this node sent (as initiator or responder) and their
	// encoded size including the frame header, before encryption.
	AntiEntropyMessages uint64
	AntiEntropyBytes    uint64
	// RecordsRepaired counts records applied from anti-entropy messages.
	RecordsRepaired uint64
	// RecordsBroadcast counts records applied from broadcast payloads.
	RecordsBroadcast uint64
	// RecordsRejected counts records from peers refused as invalid,
	// beyond MaxKeys, or under ReservedPrefix without being a
	// revocation; RecordsDeferred those held back because they are dated
	// more than MaxClockOffset in the future.
	RecordsRejected uint64
	RecordsDeferred uint64
	// RecordsForged counts records refused because their signature is
	// missing, is not their writer's, or does not verify: records that
	// claim a writer who did not write them.
	RecordsForged uint64
	// RecordsRevoked counts records refused because their writer was
	// revoked before their date; RecordsWithdrawn those removed because
	// their writer's revocation arrived after them.
	RecordsRevoked   uint64
	RecordsWithdrawn uint64
	// RecordsUnauthorized counts revocations refused because their writer
	// is not one of Config.Admins.
	RecordsUnauthorized uint64
	// BadMessages counts messages and payloads that failed validation.
	BadMessages uint64
	// BackendErrors counts failed backend writes, as the runtime reports
	// them to [Store.Advance].
	BackendErrors uint64
	// TombstonesPurged counts tombstones removed after their retention.
	TombstonesPurged uint64
	// Keys is the number of live keys; Tombstones the deletes retained.
	Keys       int
	Tombstones int
}

// entry is what the store keeps in memory about a key; values stay in the
// backend.
type entry struct {
	version Version
	deleted bool
	hash    [32]byte
	leaf    uint32
}

// Store is the core of the replicated configuration store: a state machine
// in the style of [overlay.Core], without goroutines, sockets or clocks. It
// reads its Backend but never writes it: what must be written comes out as
// [Persist] outputs, which the runtime carries out (see Persist and
// [Store.Advance]). Create one with [New]; it is not safe for concurrent use.
type Store struct {
	cfg     Config
	log     *slog.Logger
	backend Backend
	rand    *rand.Rand
	clock   Clock

	index      map[string]entry
	leafKeys   map[uint32][]string // keys of each non-empty leaf, unordered
	tree       *merkleTree
	live       int
	tombstones map[string]int64 // key → wall time of its delete

	neighbors   map[peer.ID]peer.Info
	neighborIDs []peer.ID // sorted, for a repeatable random choice

	revoked     map[peer.ID]Revocation // the deny list
	denyChanged bool                   // since the last DenyList output

	lastRefusalLog    time.Time // see logRefusal
	refusalsNotLogged int

	started   bool
	now       time.Time
	nextRound time.Time
	outputs   []any
	stats     Stats

	// unstable holds what Persist outputs asked to write and the runtime
	// has not yet reported written (see Advance): reads look here before
	// the backend, as raft's unstable log is read before its Storage.
	unstable      map[string]unstableOp // nil when empty after growing
	unstableLarge bool                  // unstable grew past smallUnstable
	persistSeq    uint64                // the Seq of the last Persist output
	persistAt     int                   // index in outputs of the undrained Persist, or -1
}

var _ overlay.Core = (*Store)(nil)

// New creates a store over cfg.Backend, loading and indexing the records it
// holds (a restart resumes where the node stopped).
func New(cfg Config) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Store{
		cfg:        cfg,
		log:        cfg.Logger,
		backend:    cfg.Backend,
		rand:       rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x6b76)),
		index:      make(map[string]entry),
		leafKeys:   make(map[uint32][]string),
		tree:       newMerkleTree(),
		tombstones: make(map[string]int64),
		neighbors:  make(map[peer.ID]peer.Info),
		revoked:    make(map[peer.ID]Revocation),
		persistAt:  -1,
	}
	var loadErr error
	err = s.backend.Scan("", func(rec Record) bool {
		if loadErr = rec.Validate(); loadErr != nil {
			return false
		}
		// The file holds only records this node wrote or verified: a
		// cheap check that each is signed in its writer's name is enough
		// (verifying 100,000 signatures would take seconds).
		if len(rec.Signature) != ed25519.SignatureSize || peer.IDFromPublicKey(rec.PublicKey) != rec.Version.Writer {
			loadErr = fmt.Errorf("%w: key %s: not signed by its writer", ErrInvalidRecord, quoteKey(rec.Key))
			return false
		}
		rec = rec.Normalize()
		s.install(rec)
		s.clock.Observe(rec.Version.Time)
		return true
	})
	if err == nil {
		err = loadErr
	}
	if err != nil {
		return nil, fmt.Errorf("kv: load records: %w", err)
	}
	s.loadRevocations()
	s.denyChanged = false
	return s, nil
}

// Step feeds one input to the store at time now: [Put], [Delete], [Revoke],
// [NeighborUp], [NeighborDown], [FromBroadcast], [overlay.Received] (an
// anti-entropy message), [overlay.LinkDown] or [overlay.Tick]. It never panics
// on what a peer sent.
func (s *Store) Step(now time.Time, input any) {
	s.now = now
	if !s.started {
		s.started = true
		// A random first round spreads the rounds of nodes started together.
		s.nextRound = now.Add(time.Duration(s.rand.Int64N(int64(s.cfg.AntiEntropyInterval)) + 1))
	}
	switch in := input.(type) {
	case Put:
		rec, err := s.localWrite(in.Key, in.Value, false)
		s.outputs = append(s.outputs, Result{ReqID: in.ReqID, Record: rec, Err: err})
	case Delete:
		rec, err := s.localWrite(in.Key, nil, true)
		s.outputs = append(s.outputs, Result{ReqID: in.ReqID, Record: rec, Err: err})
	case Revoke:
		rec, err := s.localRevoke(in.ID)
		s.outputs = append(s.outputs, Result{ReqID: in.ReqID, Record: rec, Err: err})
	case NeighborUp:
		s.addNeighbor(in.Peer)
		s.startRound(in.Peer)
	case NeighborDown:
		s.removeNeighbor(in.Peer)
	case FromBroadcast:
		s.onBroadcast(in)
	case overlay.Received:
		s.onReceived(in)
	case overlay.LinkDown:
		// An anti-entropy message was lost; the next round repairs.
		s.log.Debug("kv: link down", "peer", in.Peer.Short(), "err", in.Err)
	case overlay.Tick:
		s.tick()
	case Persisted:
		s.Advance(in.Seq, in.Err)
	default:
		s.log.Warn("kv: unknown input", "type", fmt.Sprintf("%T", input))
	}
	s.emitDenyList()
}

// Drain appends the outputs produced since the last call to dst: [Persist],
// [Result], [Changed], [Broadcast], [DenyList] and [overlay.Send]. There is at
// most one Persist among them, before every output that depends on it.
func (s *Store) Drain(dst []any) []any {
	dst = append(dst, s.outputs...)
	clear(s.outputs)
	s.outputs = s.outputs[:0]
	s.persistAt = -1
	return dst
}

// NextDeadline returns when the store next needs an [overlay.Tick]: its next
// anti-entropy round. It has none before its first Step.
func (s *Store) NextDeadline() (time.Time, bool) {
	return s.nextRound, s.started
}

// Get returns the live record of key; deleted and unknown keys are not found.
func (s *Store) Get(key string) (Record, bool) {
	e, ok := s.index[key]
	if !ok || e.deleted {
		return Record{}, false
	}
	rec, found, err := s.stored(key)
	if err != nil || !found {
		s.log.Error("kv: backend lost an indexed key", "key", key, "err", err)
		return Record{}, false
	}
	return rec, true
}

// List returns the live records whose key starts with prefix, in key order.
func (s *Store) List(prefix string) []Record {
	var records []Record
	err := s.backend.Scan(prefix, func(rec Record) bool {
		if _, changed := s.unstable[rec.Key]; !changed && !rec.Deleted {
			records = append(records, rec)
		}
		return true
	})
	if err != nil {
		s.log.Error("kv: list", "prefix", prefix, "err", err)
	}
	// Changes not yet in the backend replace what it holds.
	added := false
	for key, op := range s.unstable {
		if !op.removed && !op.rec.Deleted && strings.HasPrefix(key, prefix) {
			rec := op.rec
			rec.Value = bytes.Clone(rec.Value)
			records = append(records, rec)
			added = true
		}
	}
	if added {
		slices.SortFunc(records, func(a, b Record) int { return strings.Compare(a.Key, b.Key) })
	}
	return records
}

// Digest returns the root hash of the store's Merkle tree. Replicas holding
// the same records, tombstones included, have the same digest; an empty
// store's digest is all zeros.
func (s *Store) Digest() [32]byte { return s.tree.root() }

// Len returns the number of live keys.
func (s *Store) Len() int { return s.live }

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	stats := s.stats
	stats.Keys = s.live
	stats.Tombstones = len(s.tombstones)
	return stats
}

// Clock returns the latest HLC timestamp the store issued or witnessed.
func (s *Store) Clock() HLC { return s.clock.Last() }

// localWrite applies a Put (deleted false) or a Delete of a user key.
func (s *Store) localWrite(key string, value []byte, deleted bool) (Record, error) {
	if err := ValidateKey(key); err != nil {
		return Record{}, err
	}
	if strings.HasPrefix(key, ReservedPrefix) {
		return Record{}, fmt.Errorf("%w: %s (under %q)", ErrReservedKey, quoteKey(key), ReservedPrefix)
	}
	return s.write(key, value, deleted)
}

// write signs a local write and emits Persist (durable), then Changed and
// Broadcast, which the runtime releases once the Persist is durable.
func (s *Store) write(key string, value []byte, deleted bool) (Record, error) {
	if err := validateValue(key, value); err != nil {
		return Record{}, err
	}
	existing, known := s.index[key]
	wasLive := known && !existing.deleted
	switch {
	case deleted && !wasLive:
		return Record{}, fmt.Errorf("%w: %s", ErrNotFound, quoteKey(key))
	case !deleted && !wasLive && s.live >= s.cfg.MaxKeys:
		return Record{}, fmt.Errorf("%w: cannot create %s, the store holds %d keys", ErrTooManyKeys, quoteKey(key), s.live)
	}
	rec := Record{
		Key:     key,
		Value:   bytes.Clone(value),
		Version: Version{Time: s.clock.Now(s.now), Writer: s.cfg.Self},
		Deleted: deleted,
	}.Sign(s.cfg.Key)
	s.persist([]Record{rec}, nil, true)
	s.install(rec)
	s.outputs = append(s.outputs, Changed{Record: rec, Local: true})
	s.noteRevocation(rec)
	payload, err := wire.Marshal(&Update{Records: []Record{rec}})
	if err != nil {
		// Cannot happen for a registered type; anti-entropy would still
		// spread the write.
		s.log.Error("kv: encode update", "key", key, "err", err)
		return rec, nil
	}
	s.outputs = append(s.outputs, Broadcast{Payload: payload})
	return rec, nil
}

// tick runs the periodic work when due: purge, then one anti-entropy round
// with a random neighbour.
func (s *Store) tick() {
	if s.now.Before(s.nextRound) {
		return
	}
	s.nextRound = s.now.Add(s.cfg.AntiEntropyInterval)
	s.purge()
	if len(s.neighborIDs) > 0 {
		s.startRound(s.neighbors[s.neighborIDs[s.rand.IntN(len(s.neighborIDs))]])
	}
}

func (s *Store) addNeighbor(info peer.Info) {
	if info.ID == s.cfg.Self || info.ID.IsZero() {
		return
	}
	if _, known := s.neighbors[info.ID]; !known {
		i, _ := slices.BinarySearchFunc(s.neighborIDs, info.ID, peer.ID.Compare)
		s.neighborIDs = slices.Insert(s.neighborIDs, i, info.ID)
	}
	s.neighbors[info.ID] = info
}

func (s *Store) removeNeighbor(id peer.ID) {
	if _, known := s.neighbors[id]; !known {
		return
	}
	delete(s.neighbors, id)
	if i, found := slices.BinarySearchFunc(s.neighborIDs, id, peer.ID.Compare); found {
		s.neighborIDs = slices.Delete(s.neighborIDs, i, i+1)
	}
}

// refusalLogInterval is the least time between two log lines about refused
// records: a peer sending refused records in a loop must not fill the log.
const refusalLogInterval = 10 * time.Second

// logRefusal logs a refused record, at most once per refusalLogInterval of
// the store's time, with the number of refusals not logged since the last
// line. The counters in Stats count every one.
func (s *Store) logRefusal(from peer.Info, reason string, err error) {
	if !s.lastRefusalLog.IsZero() && s.now.Sub(s.lastRefusalLog) < refusalLogInterval {
		s.refusalsNotLogged++
		return
	}
	s.log.Warn("kv: record from a peer refused", "peer", from.ID.Short(), "reason", reason, "err", err, "refused_not_logged", s.refusalsNotLogged)
	s.lastRefusalLog, s.refusalsNotLogged = s.now, 0
}
