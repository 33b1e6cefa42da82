package kv

import (
	"fmt"
	"slices"

	"github.com/p2p-go/p2p/peer"
)

// The merge of records learnt from peers: last writer wins by HLC version,
// records are indexed in the Merkle tree, tombstones are purged after their
// retention.

// onBroadcast merges the records of a broadcast payload.
func (s *Store) onBroadcast(in FromBroadcast) {
	update, err := decodePayload(in.Payload)
	if err != nil {
		s.stats.BadMessages++
		s.log.Debug("kv: bad broadcast payload", "peer", in.From.ID.Short(), "err", err)
		return
	}
	s.stats.RecordsBroadcast += uint64(s.applyRemote(in.From, update.Records))
}

// applyRemote merges records from a peer by last-writer-wins, emits the
// winners in one Persist (not durable) and a Changed for each. It returns the
// number of records applied. A record is applied only if it is valid, not
// dated too far in the future, signed by its writer, and written by a node
// not revoked before its date; the signature is checked only for records
// that would win, so stale records cost no verification.
func (s *Store) applyRemote(from peer.Info, records []Record) int {
	// Keep the greatest record of each key of the batch.
	batch := make([]Record, 0, len(records))
	position := make(map[string]int, len(records))
	horizon := s.now.Add(s.cfg.MaxClockOffset).UnixNano()
	for _, rec := range records {
		rec = rec.Normalize()
		if err := rec.Validate(); err != nil {
			s.stats.RecordsRejected++
			s.logRefusal(from, "invalid", err)
			continue
		}
		if rec.Version.Time.Wall > horizon {
			s.stats.RecordsDeferred++
			s.logRefusal(from, "future", fmt.Errorf("key %s: version %s is more than %v ahead", quoteKey(rec.Key), rec.Version.String(), s.cfg.MaxClockOffset))
			continue
		}
		if existing, known := s.index[rec.Key]; known && !s.supersedesEntry(rec, existing) {
			continue
		}
		if err := rec.Verify(); err != nil {
			s.stats.RecordsForged++
			s.logRefusal(from, "bad signature", err)
			continue
		}
		if reason := s.refusal(rec); reason != "" {
			s.logRefusal(from, reason, fmt.Errorf("key %s, version %s", quoteKey(rec.Key), rec.Version.String()))
			continue
		}
		if i, ok := position[rec.Key]; ok {
			if rec.Supersedes(batch[i]) {
				batch[i] = rec
			}
			continue
		}
		position[rec.Key] = len(batch)
		batch = append(batch, rec)
	}
	// Keep the records that win over what the store holds.
	winners := batch[:0]
	liveDelta, entriesDelta := 0, 0
	for _, rec := range batch {
		existing, known := s.index[rec.Key]
		if known && !s.supersedesEntry(rec, existing) {
			continue
		}
		if !known && rec.Deleted && s.expired(rec) {
			continue // nothing to delete, and the delete is forgotten
		}
		wasLive := known && !existing.deleted
		if !rec.Deleted && !wasLive && s.live+liveDelta >= s.cfg.MaxKeys ||
			!known && len(s.index)+entriesDelta >= 2*s.cfg.MaxKeys {
			s.stats.RecordsRejected++
			s.logRefusal(from, "store full", fmt.Errorf("key %s: the store holds Config.MaxKeys (%d) keys", quoteKey(rec.Key), s.cfg.MaxKeys))
			continue
		}
		if !rec.Deleted {
			liveDelta++
		}
		if wasLive {
			liveDelta--
		}
		if !known {
			entriesDelta++
		}
		winners = append(winners, rec)
	}
	if len(winners) == 0 {
		return 0
	}
	s.persist(winners, nil, false)
	for _, rec := range winners {
		s.install(rec)
		s.clock.Update(s.now, rec.Version.Time)
		s.outputs = append(s.outputs, Changed{Record: rec})
	}
	for _, rec := range winners {
		s.noteRevocation(rec)
	}
	return len(winners)
}

// supersedesEntry reports whether rec wins over the record indexed as e.
func (s *Store) supersedesEntry(rec Record, e entry) bool {
	if c := compareVersions(rec.Key, rec.Version, e.version); c != 0 {
		return c > 0
	}
	if rec.hash() == e.hash {
		return false // the same record
	}
	stored, found, err := s.stored(rec.Key)
	if err != nil || !found {
		s.log.Error("kv: backend lost an indexed key", "key", rec.Key, "err", err)
		return false
	}
	return rec.Supersedes(stored)
}

// expired reports whether rec is a tombstone older than the retention.
func (s *Store) expired(rec Record) bool {
	return rec.Deleted && rec.Version.Time.Wall < s.now.Add(-s.cfg.TombstoneRetention).UnixNano()
}

// install puts a record, persisted or emitted in a Persist, in the index and
// the tree.
func (s *Store) install(rec Record) {
	h := rec.hash()
	old, known := s.index[rec.Key]
	leaf := old.leaf
	if known {
		s.tree.toggle(old.leaf, old.hash)
		if old.deleted {
			delete(s.tombstones, rec.Key)
		} else {
			s.live--
		}
	} else {
		leaf = leafOf(rec.Key)
		s.leafKeys[leaf] = append(s.leafKeys[leaf], rec.Key)
		s.tree.count(leaf, 1)
	}
	s.tree.toggle(leaf, h)
	s.index[rec.Key] = entry{version: rec.Version, deleted: rec.Deleted, hash: h, leaf: leaf}
	if rec.Deleted {
		s.tombstones[rec.Key] = rec.Version.Time.Wall
	} else {
		s.live++
	}
}

// purge removes the tombstones older than the retention.
func (s *Store) purge() {
	limit := s.now.Add(-s.cfg.TombstoneRetention).UnixNano()
	var expired []string
	for key, wall := range s.tombstones {
		if wall < limit {
			expired = append(expired, key)
		}
	}
	if len(expired) == 0 {
		return
	}
	slices.Sort(expired)
	s.persist(nil, expired, false)
	s.forget(expired)
	s.stats.TombstonesPurged += uint64(len(expired))
}

// forget removes keys, whose removal is emitted in a Persist, from the index and
// the tree.
func (s *Store) forget(gone []string) {
	for _, key := range gone {
		e, known := s.index[key]
		if !known {
			continue
		}
		s.tree.toggle(e.leaf, e.hash)
		s.tree.count(e.leaf, -1)
		delete(s.index, key)
		if e.deleted {
			delete(s.tombstones, key)
		} else {
			s.live--
		}
		keys := s.leafKeys[e.leaf]
		if i := slices.Index(keys, key); i >= 0 {
			keys[i] = keys[len(keys)-1]
			keys = keys[:len(keys)-1]
		}
		if len(keys) == 0 {
			delete(s.leafKeys, e.leaf)
		} else {
			s.leafKeys[e.leaf] = keys
		}
	}
}
