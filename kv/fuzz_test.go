package kv

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/wire"
)

// fuzzStore returns a store holding a few records, so that decoded messages
// meet a non-empty tree.
func fuzzStore(t tester) *Store {
	s := newTestStore(t, 1, nil, nil)
	fill(t, s, fuzzRecords())
	return s
}

func fuzzRecords() []Record {
	wall := epoch.UnixNano() - 1000
	return []Record{
		remoteWrite(2, "app/port", []byte("8080"), wall),
		remoteWrite(3, "app/host", []byte("example"), wall+1),
		signed(Record{Key: "app/old", Version: Version{Time: HLC{Wall: wall + 2, Logical: 1}, Writer: testID(2)}, Deleted: true}),
	}
}

// fuzzSeeds are valid messages of every type, the seed corpus also stored in
// testdata/fuzz.
func fuzzSeeds() []any {
	hashes := make([]byte, treeFanout*wireHashLen)
	for i := range hashes {
		hashes[i] = byte(i)
	}
	return []any{
		&Update{Records: fuzzRecords()[:1]},
		&SyncRoot{Root: [32]byte{1, 2, 3}},
		&SyncNodes{Level: 1, Parents: []uint32{0}, Hashes: hashes},
		&SyncNodes{Level: 4, Parents: []uint32{7, 4095}, Hashes: append(hashes, hashes...)},
		&SyncRecords{WantKeys: fuzzWantKeys(), Records: fuzzRecords()},
		&SyncRecords{Records: fuzzRecords()[2:]},
		&Update{Records: []Record{fuzzRevocation()}},
		&SyncSummary{Level: 4, Nodes: []uint32{leafOf("app/port"), 65535}, Entries: fuzzSummary(4, leafOf("app/port"))},
		&SyncSummary{Level: 0, Nodes: []uint32{0}, Entries: fuzzSummary(0, 0)},
	}
}

// fuzzRevocation is node 2's revocation of node 3.
func fuzzRevocation() Record {
	return signed(Record{Key: RevocationKey(testID(3)), Value: []byte(`{"revoked":"x"}`), Version: Version{Time: HLC{Wall: epoch.UnixNano() - 10}, Writer: testID(2)}})
}

// fuzzWantKeys asks for two keys of fuzzRecords and one unknown key.
func fuzzWantKeys() []byte {
	var want []byte
	for _, key := range []string{"app/port", "app/old", "unknown"} {
		want = binary.BigEndian.AppendUint64(want, keyHash(key))
	}
	return want
}

// fuzzSummary returns the summary entries of fuzzStore's records under a
// node, with one version changed.
func fuzzSummary(level int, index uint32) []byte {
	s := fuzzStore(nopTester{})
	var entries []byte
	s.keysUnder(level, index, func(_ uint32, keys []string) {
		for _, key := range keys {
			e := makeSummaryEntry(key, s.index[key])
			if key == "app/host" {
				e.time.Logical++
			}
			entries = e.append(entries)
		}
	})
	return entries
}

// nopTester builds fixtures outside a test; it panics on failure.
type nopTester struct{}

func (nopTester) Helper()                      {}
func (nopTester) Errorf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }
func (nopTester) Fatal(args ...any)            { panic(fmt.Sprint(args...)) }
func (nopTester) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }
func (nopTester) Logf(string, ...any)          {}

func addSeeds(f *testing.F) {
	for _, msg := range fuzzSeeds() {
		data, err := wire.Marshal(msg)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// FuzzReceived decodes bytes as a direct message and steps a store with it:
// nothing may panic, every output must encode, and the store's index, tree
// and backend must stay consistent.
func FuzzReceived(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := wire.Unmarshal(data)
		if err != nil {
			return
		}
		s := fuzzStore(t)
		s.Step(epoch, overlay.Received{From: testInfo(2), Msg: msg})
		for _, out := range drain(s) {
			if send, ok := out.(overlay.Send); ok {
				if _, err := wire.Marshal(send.Msg); err != nil {
					t.Fatalf("output does not encode: %v", err)
				}
			}
		}
		checkInvariants(t, s)
	})
}

// FuzzBroadcastPayload steps a store with arbitrary broadcast payloads.
func FuzzBroadcastPayload(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		s := fuzzStore(t)
		s.Step(epoch, FromBroadcast{From: testInfo(2), Payload: data})
		drain(s)
		checkInvariants(t, s)
	})
}
