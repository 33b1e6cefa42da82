package kademlia

import (
	"fmt"
	"time"

	"github.com/p2p-go/p2p/peer"
)

// storedRecord is a record held for the network.
type storedRecord struct {
	rec Record
	// from is the peer whose STORE created the entry (the node's own ID for
	// a record it wrote), counted against MaxRecordsPerPeer.
	from peer.ID
	// nextReplicate is when this holder next pushes the record to the k
	// closest nodes; a STORE of the record received meanwhile postpones it
	// (paper section 2.5: only one holder per interval needs to replicate).
	nextReplicate time.Time
}

// recordStore holds the records a node keeps for others, within quotas.
type recordStore struct {
	records   map[peer.ID]*storedRecord
	perWriter map[string]int
	perPeer   map[peer.ID]int

	maxRecords, maxPerWriter, maxPerPeer int
	maxValue, maxName                    int
}

func newRecordStore(cfg *Config) *recordStore {
	return &recordStore{
		records:      map[peer.ID]*storedRecord{},
		perWriter:    map[string]int{},
		perPeer:      map[peer.ID]int{},
		maxRecords:   cfg.MaxRecords,
		maxPerWriter: cfg.MaxRecordsPerWriter,
		maxPerPeer:   cfg.MaxRecordsPerPeer,
		maxValue:     cfg.MaxValueSize,
		maxName:      cfg.MaxNameSize,
	}
}

// validate checks a record against the size limits and its authenticity.
func (s *recordStore) validate(rec *Record) error {
	if err := rec.checkSize(s.maxValue, s.maxName); err != nil {
		return err
	}
	return rec.Verify()
}

// put stores rec, first sent by from, at now. A mutable record replaces the
// stored version only with a higher Seq; the same version again extends the
// expiry (a replication or republication). It returns the entry.
func (s *recordStore) put(rec Record, from peer.ID, now time.Time, replicateAt time.Time) (*storedRecord, error) {
	if err := s.validate(&rec); err != nil {
		return nil, err
	}
	if !rec.Expires.After(now) {
		return nil, fmt.Errorf("%w: record %s already expired", ErrMalformed, rec.Key.Short())
	}
	if old := s.records[rec.Key]; old != nil && !old.rec.Expires.After(now) {
		s.delete(rec.Key)
	}
	if old := s.records[rec.Key]; old != nil {
		switch {
		case !rec.Mutable() || sameVersion(&old.rec, &rec):
			if rec.Expires.After(old.rec.Expires) {
				old.rec.Expires = rec.Expires
			}
		case rec.Seq > old.rec.Seq:
			rec.Expires = later(rec.Expires, old.rec.Expires)
			old.rec = rec
		default:
			return nil, fmt.Errorf("%w: record %s seq %d, stored seq %d", ErrStale, rec.Key.Short(), rec.Seq, old.rec.Seq)
		}
		old.nextReplicate = replicateAt
		return old, nil
	}
	if len(s.records) >= s.maxRecords {
		return nil, fmt.Errorf("%w: %d records stored", ErrStoreFull, len(s.records))
	}
	writer := string(rec.Writer)
	if rec.Mutable() && s.perWriter[writer] >= s.maxPerWriter {
		return nil, fmt.Errorf("%w: %d records of writer %s", ErrStoreFull, s.perWriter[writer], peer.IDFromPublicKey(rec.Writer).Short())
	}
	if s.perPeer[from] >= s.maxPerPeer {
		return nil, fmt.Errorf("%w: %d records from peer %s", ErrStoreFull, s.perPeer[from], from.Short())
	}
	entry := &storedRecord{rec: rec, from: from, nextReplicate: replicateAt}
	s.records[rec.Key] = entry
	if rec.Mutable() {
		s.perWriter[writer]++
	}
	s.perPeer[from]++
	return entry, nil
}

// get returns the live record under key.
func (s *recordStore) get(key peer.ID, now time.Time) (*storedRecord, bool) {
	entry := s.records[key]
	if entry == nil || !entry.rec.Expires.After(now) {
		return nil, false
	}
	return entry, true
}

func (s *recordStore) delete(key peer.ID) {
	entry := s.records[key]
	if entry == nil {
		return
	}
	delete(s.records, key)
	if entry.rec.Mutable() {
		writer := string(entry.rec.Writer)
		if s.perWriter[writer]--; s.perWriter[writer] <= 0 {
			delete(s.perWriter, writer)
		}
	}
	if s.perPeer[entry.from]--; s.perPeer[entry.from] <= 0 {
		delete(s.perPeer, entry.from)
	}
}

// expire drops the records whose expiry has passed.
func (s *recordStore) expire(now time.Time) {
	for key, entry := range s.records {
		if !entry.rec.Expires.After(now) {
			s.delete(key)
		}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// tokenBucket is one peer's STORE allowance.
type tokenBucket struct {
	tokens float64
	last   time.Time
}

// rateLimiter bounds the STOREs each peer may send: a token bucket per peer
// refilled at rate per second up to burst, driven by the time passed to the
// core. It tracks at most maxPeers peers; a peer beyond that is refused
// until idle limiters (full again) are pruned.
type rateLimiter struct {
	rate     float64
	burst    float64
	maxPeers int
	peers    map[peer.ID]*tokenBucket
}

func newRateLimiter(rate float64, burst, maxPeers int) *rateLimiter {
	return &rateLimiter{rate: rate, burst: float64(burst), maxPeers: maxPeers, peers: map[peer.ID]*tokenBucket{}}
}

// allow takes a token from id's bucket at now, reporting whether there was
// one.
func (l *rateLimiter) allow(id peer.ID, now time.Time) bool {
	b := l.peers[id]
	if b == nil {
		if len(l.peers) >= l.maxPeers {
			l.prune(now)
			if len(l.peers) >= l.maxPeers {
				return false
			}
		}
		b = &tokenBucket{tokens: l.burst, last: now}
		l.peers[id] = b
	}
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(l.burst, b.tokens+elapsed.Seconds()*l.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// prune forgets the peers whose bucket has refilled: they lose nothing.
func (l *rateLimiter) prune(now time.Time) {
	for id, b := range l.peers {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.peers, id)
		}
	}
}
