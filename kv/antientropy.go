package kv

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/wire"
)

// Anti-entropy is stateless: every message carries what its receiver needs
// to answer, so rounds need no session table, interleave freely, and a lost
// message only ends a round early (the next round repairs).

// startRound opens an anti-entropy round with a peer by sending the root.
func (s *Store) startRound(to peer.Info) {
	if to.ID == s.cfg.Self || to.ID.IsZero() {
		return
	}
	s.stats.AntiEntropyRounds++
	s.sendSync(to, &SyncRoot{Root: s.tree.root()})
}

// onReceived dispatches a direct message.
func (s *Store) onReceived(in overlay.Received) {
	var err error
	switch m := in.Msg.(type) {
	case *SyncRoot:
		if m != nil {
			s.onSyncRoot(in.From, m)
		}
	case *SyncNodes:
		if m != nil {
			err = s.onSyncNodes(in.From, m)
		}
	case *SyncSummary:
		if m != nil {
			err = s.onSyncSummary(in.From, m)
		}
	case *SyncRecords:
		if m != nil {
			err = s.onSyncRecords(in.From, m)
		}
	case *Update:
		if m != nil {
			if err = m.validate(); err == nil {
				s.stats.RecordsBroadcast += uint64(s.applyRemote(in.From, m.Records))
			}
		}
	default:
		err = fmt.Errorf("%w: unexpected message %T", ErrBadMessage, in.Msg)
	}
	if err != nil {
		s.stats.BadMessages++
		s.log.Debug("kv: bad message", "peer", in.From.ID.Short(), "err", err)
	}
}

// onSyncRoot answers a round's opening: nothing when the roots agree, else
// the level-1 hashes.
func (s *Store) onSyncRoot(from peer.Info, m *SyncRoot) {
	if m.Root == s.tree.root() {
		return
	}
	s.descend(from, 0, []uint32{0})
}

// summaryThreshold is the number of records per differing node below which
// a summary is sent instead of descending a level: descending costs
// treeFanout hashes of wireHashLen bytes per node (128 bytes) and a round
// trip, a summary entry summaryEntryLen (32 bytes).
const summaryThreshold = treeFanout * wireHashLen / summaryEntryLen

// descend answers for differing nodes at level: with a summary of our
// records under them when they are leaves or hold few records, else with
// the hashes of their children.
func (s *Store) descend(to peer.Info, level int, differing []uint32) {
	records := 0
	for _, index := range differing {
		records += s.recordsUnder(level, index)
	}
	if level == treeDepth || records <= summaryThreshold*len(differing) {
		s.sendSummary(to, level, differing)
		return
	}
	s.sendNodes(to, level+1, differing)
}

// onSyncNodes compares the peer's hashes with ours and descends into the
// children that differ.
func (s *Store) onSyncNodes(from peer.Info, m *SyncNodes) error {
	if err := m.validate(); err != nil {
		return err
	}
	s.tree.refresh()
	level := int(m.Level)
	var differing []uint32
	for i, parent := range m.Parents {
		for c := range uint32(treeFanout) {
			index := parent*treeFanout + c
			offset := (i*treeFanout + int(c)) * wireHashLen
			mine := s.tree.node(level, index)
			if !bytes.Equal(mine[:wireHashLen], m.Hashes[offset:offset+wireHashLen]) {
				differing = append(differing, index)
			}
		}
	}
	if len(differing) > 0 {
		s.descend(from, level, differing)
	}
	return nil
}

// onSyncSummary compares the peer's summary with our records under the same
// nodes: we send the records that are newer here or that the peer lacks,
// and ask for the keys whose record is newer there.
func (s *Store) onSyncSummary(from peer.Info, m *SyncSummary) error {
	if err := m.validate(); err != nil {
		return err
	}
	theirs := make(map[uint64]summaryEntry, len(m.Entries)/summaryEntryLen)
	for offset := 0; offset < len(m.Entries); offset += summaryEntryLen {
		e := parseSummaryEntry(m.Entries[offset:])
		theirs[e.keyHash] = e
	}
	var send []string
	for _, index := range m.Nodes {
		s.keysUnder(int(m.Level), index, func(_ uint32, keys []string) {
			for _, key := range keys {
				mine := makeSummaryEntry(key, s.index[key])
				other, known := theirs[mine.keyHash]
				order := 0
				if known {
					order = mine.compare(other)
					if strings.HasPrefix(key, RevokedPrefix) {
						order = -order // the earlier revocation wins
					}
				}
				switch {
				case !known:
					send = append(send, key)
				case order > 0:
					send = append(send, key)
					delete(theirs, mine.keyHash)
				case order == 0 && mine.recordHash == other.recordHash:
					delete(theirs, mine.keyHash)
				case order == 0:
					send = append(send, key) // and want theirs: a faulty writer
				default:
					// theirs is newer: it stays in the map and is wanted
				}
			}
		})
	}
	// What remains of theirs is newer there or missing here. Only keys
	// under the summarised nodes are asked for.
	var want []uint64
	for h := range theirs {
		if s.under(int(m.Level), m.Nodes, leafOfHash(h)) {
			want = append(want, h)
		}
	}
	slices.Sort(want)
	wantKeys := make([]byte, 0, 8*min(len(want), MaxWantKeys))
	for i, h := range want {
		if i == MaxWantKeys {
			break // the next round asks for the rest
		}
		wantKeys = binary.BigEndian.AppendUint64(wantKeys, h)
	}
	s.sendRecords(from, send, wantKeys)
	return nil
}

// under reports whether a leaf lies under one of the nodes at level.
func (s *Store) under(level int, nodes []uint32, leaf uint32) bool {
	_, found := slices.BinarySearch(nodes, leaf>>(4*(treeDepth-level)))
	return found
}

// onSyncRecords merges the peer's records and answers its WantKeys.
func (s *Store) onSyncRecords(from peer.Info, m *SyncRecords) error {
	if err := m.validate(); err != nil {
		return err
	}
	s.stats.RecordsRepaired += uint64(s.applyRemote(from, m.Records))
	if len(m.WantKeys) == 0 {
		return nil
	}
	var send []string
	for offset := 0; offset < len(m.WantKeys); offset += 8 {
		h := binary.BigEndian.Uint64(m.WantKeys[offset:])
		for _, key := range s.leafKeys[leafOfHash(h)] {
			if keyHash(key) == h {
				send = append(send, key)
			}
		}
	}
	s.sendRecords(from, send, nil)
	return nil
}

// sendNodes sends our hashes of the children, at level, of parents.
func (s *Store) sendNodes(to peer.Info, level int, parents []uint32) {
	s.tree.refresh()
	for chunk := range slices.Chunk(parents, MaxSyncParents) {
		hashes := make([]byte, 0, len(chunk)*treeFanout*wireHashLen)
		for _, parent := range chunk {
			hashes = s.tree.appendChildren(hashes, level, parent)
		}
		s.sendSync(to, &SyncNodes{Level: uint8(level), Parents: slices.Clone(chunk), Hashes: hashes})
	}
}

// sendSummary sends the summary of our records under the given nodes at
// level, cut into messages of at most MaxSyncNodes nodes and
// MaxSummaryEntries entries; a node's entries are kept in one message unless
// they alone exceed the bound.
func (s *Store) sendSummary(to peer.Info, level int, nodes []uint32) {
	var (
		inMessage []uint32
		entries   []byte
	)
	flush := func() {
		if len(inMessage) > 0 {
			s.sendSync(to, &SyncSummary{Level: uint8(level), Nodes: inMessage, Entries: entries})
		}
		inMessage, entries = nil, nil
	}
	for _, index := range nodes {
		if len(inMessage) == MaxSyncNodes || len(entries)/summaryEntryLen+s.recordsUnder(level, index) > MaxSummaryEntries {
			flush()
		}
		inMessage = append(inMessage, index)
		s.keysUnder(level, index, func(_ uint32, keys []string) {
			for _, key := range keys {
				if len(entries)/summaryEntryLen == MaxSummaryEntries {
					flush()
					inMessage = append(inMessage, index)
				}
				entries = makeSummaryEntry(key, s.index[key]).append(entries)
			}
		})
	}
	flush()
}

// sendRecords sends our records of keys and asks for wantKeys, cut into
// messages of at most MaxSyncRecords records and about MaxSyncBytes.
func (s *Store) sendRecords(to peer.Info, keys []string, wantKeys []byte) {
	var (
		records []Record
		size    int
	)
	flush := func() {
		if len(records) > 0 || len(wantKeys) > 0 {
			s.sendSync(to, &SyncRecords{WantKeys: wantKeys, Records: records})
		}
		records, size, wantKeys = nil, 0, nil
	}
	for _, key := range keys {
		rec, found, err := s.stored(key)
		if err != nil || !found {
			s.log.Error("kv: backend lost an indexed key", "key", key, "err", err)
			continue
		}
		recordSize := rec.encodedSizeEstimate()
		if len(records) > 0 && (len(records) == MaxSyncRecords || size+recordSize > MaxSyncBytes) {
			flush()
		}
		records = append(records, rec)
		size += recordSize
	}
	flush()
}

// sendSync emits an anti-entropy message and counts its encoded size.
func (s *Store) sendSync(to peer.Info, msg any) {
	s.stats.AntiEntropyMessages++
	if data, err := wire.Marshal(msg); err == nil {
		s.stats.AntiEntropyBytes += uint64(len(data) + wire.FrameHeaderLen)
	}
	s.outputs = append(s.outputs, overlay.Send{To: to, Msg: msg})
}

// recordsUnder returns the number of records (tombstones included) under a
// node of the tree.
func (s *Store) recordsUnder(level int, index uint32) int {
	if level == treeDepth {
		return len(s.leafKeys[index])
	}
	return s.tree.records[level][index]
}

// keysUnder calls yield for every non-empty leaf under a node of the tree,
// in leaf order, with the leaf's keys sorted.
func (s *Store) keysUnder(level int, index uint32, yield func(leaf uint32, keys []string)) {
	if s.recordsUnder(level, index) == 0 {
		return
	}
	if level == treeDepth {
		keys := slices.Clone(s.leafKeys[index])
		slices.SortFunc(keys, strings.Compare)
		yield(index, keys)
		return
	}
	for c := range uint32(treeFanout) {
		s.keysUnder(level+1, index*treeFanout+c, yield)
	}
}
