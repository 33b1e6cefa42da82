package kv

import (
	"fmt"
	"slices"
	"testing"

	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/wire"
)

// remoteWrite builds a record as node writer would have written it.
func remoteWrite(writer int, key string, value []byte, wall int64) Record {
	return signed(Record{Key: key, Value: value, Version: Version{Time: HLC{Wall: wall}, Writer: testID(writer)}})
}

// fill applies records to a store as if they came from a broadcast, signed
// by their writers.
func fill(t tester, s *Store, records []Record) {
	t.Helper()
	records = slices.Clone(records)
	for i := range records {
		records[i] = signed(records[i])
	}
	for chunk := range chunks(records, MaxSyncRecords) {
		if err := (&SyncRecords{Records: chunk}).validate(); err != nil {
			t.Fatal(err)
		}
		s.now = epoch
		s.applyRemote(testInfo(0), chunk)
	}
	drain(s)
}

func chunks(records []Record, size int) func(func([]Record) bool) {
	return func(yield func([]Record) bool) {
		for len(records) > 0 {
			n := min(size, len(records))
			if !yield(records[:n]) {
				return
			}
			records = records[n:]
		}
	}
}

func pairOf(t tester, a, b *Store) *directNet {
	n := newDirectNet(t, epoch)
	n.add(testInfo(1), a)
	n.add(testInfo(2), b)
	return n
}

// Demers et al.: anti-entropy between two replicas leaves both with the
// union of their updates (by last-writer-wins) in one round, whoever starts.
func TestAntiEntropyOneRoundMakesTwoReplicasIdentical(t *testing.T) {
	for _, initiator := range []int{1, 2} {
		t.Run(fmt.Sprintf("initiator=%d", initiator), func(t *testing.T) {
			a, b := newTestStore(t, 1, nil, nil), newTestStore(t, 2, nil, nil)
			wall := epoch.UnixNano() - 1e9
			var common []Record
			for i := range 500 {
				common = append(common, remoteWrite(3, fmt.Sprintf("common/%03d", i), []byte("v"), wall))
			}
			fill(t, a, common)
			fill(t, b, common)
			fill(t, a, []Record{
				remoteWrite(1, "only-a", []byte("a"), wall),
				remoteWrite(1, "common/001", []byte("newer on a"), wall+5),
				remoteWrite(1, "common/002", []byte("older on a"), wall-5),
				{Key: "common/003", Version: Version{Time: HLC{Wall: wall + 9}, Writer: testID(1)}, Deleted: true},
			})
			fill(t, b, []Record{
				remoteWrite(2, "only-b", []byte("b"), wall),
				remoteWrite(2, "common/002", []byte("newer on b"), wall+5),
				remoteWrite(2, "common/003", []byte("beaten by a's delete"), wall+1),
			})
			n := pairOf(t, a, b)
			n.reconcile(testID(initiator), testID(3-initiator))
			if a.Digest() != b.Digest() {
				t.Fatal("digests differ after one round")
			}
			for _, s := range []*Store{a, b} {
				checkInvariants(t, s)
				if s.Len() != 501 {
					t.Errorf("Len = %d, want 501", s.Len())
				}
				for key, want := range map[string]string{"only-a": "a", "only-b": "b", "common/001": "newer on a", "common/002": "newer on b"} {
					if rec, ok := s.Get(key); !ok || string(rec.Value) != want {
						t.Errorf("Get(%s) = %q, %v; want %q", key, rec.Value, ok, want)
					}
				}
				if _, ok := s.Get("common/003"); ok {
					t.Error("common/003 should be deleted")
				}
			}
			repaired := a.Stats().RecordsRepaired + b.Stats().RecordsRepaired
			if repaired != 5 {
				t.Errorf("records repaired = %d, want 5", repaired)
			}
			t.Logf("%d messages, %d bytes", n.messages, n.bytes)
		})
	}
}

// An in-sync round costs a single SyncRoot: 43 bytes with its frame header.
func TestAntiEntropyInSyncRoundCostsOneMessage(t *testing.T) {
	a, b := newTestStore(t, 1, nil, nil), newTestStore(t, 2, nil, nil)
	var records []Record
	for i := range 1000 {
		records = append(records, remoteWrite(3, fmt.Sprintf("k%d", i), []byte("v"), epoch.UnixNano()-1))
	}
	fill(t, a, records)
	fill(t, b, records)
	n := pairOf(t, a, b)
	n.reconcile(testID(1), testID(2))
	if n.messages != 1 || n.bytes != 43 {
		t.Fatalf("in-sync round: %d messages, %d bytes; want 1 message of 43 bytes", n.messages, n.bytes)
	}
	if st := a.Stats(); st.AntiEntropyRounds != 1 || st.AntiEntropyBytes != 43 || st.AntiEntropyMessages != 1 {
		t.Errorf("stats = %+v", st)
	}
}

// Every anti-entropy message respects the protocol's bounds, even when the
// stores differ in thousands of large records: the round is cut into many
// messages, each of which the receiver accepts.
func TestAntiEntropyMessagesAreBounded(t *testing.T) {
	a, b := newTestStore(t, 1, nil, nil), newTestStore(t, 2, nil, nil)
	var onA, onB []Record
	for i := range 3000 {
		onA = append(onA, remoteWrite(1, fmt.Sprintf("a/%d", i), make([]byte, 1000), epoch.UnixNano()-1))
		onB = append(onB, remoteWrite(2, fmt.Sprintf("b/%d", i), make([]byte, 100), epoch.UnixNano()-1))
	}
	onA = append(onA, remoteWrite(1, "huge", make([]byte, MaxValueLen), epoch.UnixNano()-1))
	fill(t, a, onA)
	fill(t, b, onB)
	n := pairOf(t, a, b)
	n.onDelivery = func(from, to peer.ID, msg any) {
		switch m := msg.(type) {
		case *SyncNodes:
			if err := m.validate(); err != nil {
				t.Errorf("invalid SyncNodes: %v", err)
			}
		case *SyncSummary:
			if err := m.validate(); err != nil {
				t.Errorf("invalid SyncSummary: %v", err)
			}
		case *SyncRecords:
			if err := m.validate(); err != nil {
				t.Errorf("invalid SyncRecords: %v", err)
			}
			size := 0
			for _, rec := range m.Records {
				size += rec.encodedSizeEstimate()
			}
			if len(m.Records) > 1 && size > MaxSyncBytes {
				t.Errorf("SyncRecords of %d records, %d bytes", len(m.Records), size)
			}
		}
	}
	n.reconcile(testID(1), testID(2))
	if a.Digest() != b.Digest() || a.Len() != 6001 {
		t.Fatalf("not reconciled: len %d and %d", a.Len(), b.Len())
	}
	if n.largest > MaxSyncBytes+MaxValueLen+MaxKeyLen+1024 || n.largest > wire.DefaultMaxFrameSize {
		t.Errorf("largest message %d bytes", n.largest)
	}
	t.Logf("%d messages, %d bytes, largest %d", n.messages, n.bytes, n.largest)
}

// A round repairs only differences: with 1% of 20,000 keys differing, the
// bytes exchanged are a small fraction of the store's size. (The benchmark
// measures the same at 100,000 keys.)
func TestAntiEntropySendsOnlyDifferences(t *testing.T) {
	const keys = 20_000
	a, b := newTestStore(t, 1, nil, nil), newTestStore(t, 2, nil, nil)
	records := make([]Record, keys)
	total := 0
	for i := range records {
		records[i] = remoteWrite(3, fmt.Sprintf("service/%05d/setting", i), make([]byte, 64), epoch.UnixNano()-10)
		total += len(mustMarshal(t, &Update{Records: records[i : i+1]}))
	}
	fill(t, a, records)
	fill(t, b, records)
	var changed []Record
	for i := 0; i < keys; i += 100 {
		rec := records[i]
		rec.Version = Version{Time: HLC{Wall: epoch.UnixNano() - 1}, Writer: testID(2)}
		changed = append(changed, rec)
	}
	fill(t, b, changed)
	n := pairOf(t, a, b)
	n.reconcile(testID(1), testID(2))
	if a.Digest() != b.Digest() {
		t.Fatal("not reconciled")
	}
	if got := a.Stats().RecordsRepaired; got != keys/100 {
		t.Errorf("repaired %d records, want %d", got, keys/100)
	}
	perKey := float64(n.bytes) / float64(len(changed))
	t.Logf("1%% of %d keys differ: %d bytes in %d messages (%.0f bytes per differing key; full state %d bytes)", keys, n.bytes, n.messages, perKey, total)
	if n.bytes > total/20 {
		t.Errorf("round cost %d bytes, more than 5%% of the full state (%d)", n.bytes, total)
	}
}
