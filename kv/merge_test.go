package kv

import (
	"fmt"
	"testing"

	"pgregory.net/rapid"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/wire"
)

// The last-writer-wins merge is a join: any order and any duplication of the
// same set of writes, delivered through any mix of broadcast payloads and
// anti-entropy records, leaves every replica with the same state (same
// Digest), holding for each key the write with the greatest version.
func TestMergeIsOrderAndDuplicationInsensitive(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		keys := rapid.SampledFrom([]string{"a", "b", "c", "app/x", "app/y"})
		base := epoch.UnixNano() - 1e9
		writes := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) Record {
			rec := Record{
				Key: keys.Draw(t, "key"),
				Version: Version{
					// Few distinct times so that ties on the timestamp,
					// broken by writer ID, are frequent.
					Time:   HLC{Wall: base + rapid.Int64Range(0, 3).Draw(t, "wall"), Logical: rapid.Uint32Range(0, 2).Draw(t, "logical")},
					Writer: testID(rapid.IntRange(1, 3).Draw(t, "writer")),
				},
				Deleted: rapid.Bool().Draw(t, "deleted"),
			}
			if !rec.Deleted {
				rec.Value = rapid.SliceOfN(rapid.Byte(), 0, 4).Draw(t, "value")
			}
			return signed(rec)
		}), 1, 30).Draw(t, "writes")

		// The expected state: for each key the greatest record.
		expected := map[string]Record{}
		for _, w := range writes {
			if cur, ok := expected[w.Key]; !ok || w.Supersedes(cur) {
				expected[w.Key] = w.Normalize()
			}
		}
		reference := newTestStore(t, 9, nil, nil)
		fill(t, reference, writes)

		for replica := range 3 {
			s := newTestStore(t, 10+replica, nil, nil)
			// Each replica gets a random permutation of the writes with
			// duplicates, cut into random batches.
			order := rapid.Permutation(append(writes, rapid.SliceOfN(rapid.SampledFrom(writes), 0, 10).Draw(t, "duplicates")...)).Draw(t, "order")
			for len(order) > 0 {
				n := rapid.IntRange(1, len(order)).Draw(t, "batch")
				batch := order[:n]
				order = order[n:]
				if rapid.Bool().Draw(t, "via broadcast") && n <= MaxUpdateRecords {
					payload, err := wire.Marshal(&Update{Records: batch})
					if err != nil {
						t.Fatal(err)
					}
					s.Step(epoch, FromBroadcast{From: testInfo(1), Payload: payload})
				} else {
					s.Step(epoch, overlay.Received{From: testInfo(1), Msg: &SyncRecords{Records: batch}})
				}
				drain(s)
			}
			if s.Digest() != reference.Digest() {
				t.Fatalf("replica %d digest differs from the reference", replica)
			}
			for key, want := range expected {
				got, found, _ := s.backend.Get(key)
				if !found || got.Version != want.Version || got.Deleted != want.Deleted || string(got.Value) != string(want.Value) {
					t.Fatalf("replica %d key %s = %+v, want %+v", replica, key, got, want)
				}
			}
			checkInvariants(t, s)
		}
	})
}

// Replicas whose writes interleave with anti-entropy in any order end equal:
// the merge commutes with the reconciliation protocol. Revocations are among
// the writes, of outsiders and of the replicas themselves: the replicas that
// end up not revoked end equal (a revoked replica keeps the writes it makes
// after its revocation, which every other replica refuses).
func TestAntiEntropyConvergesWhateverTheInterleaving(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		const nodes = 3
		n := newDirectNet(t, epoch)
		for i := range nodes {
			n.add(testInfo(i+1), newTestStore(t, i+1, nil, nil))
		}
		for step := range rapid.IntRange(1, 40).Draw(t, "steps") {
			i := rapid.IntRange(1, nodes).Draw(t, "node")
			switch rapid.IntRange(0, 3).Draw(t, "action") {
			case 0:
				key := fmt.Sprintf("k%d", rapid.IntRange(0, 6).Draw(t, "key"))
				n.step(testID(i), Put{Key: key, Value: []byte{byte(step)}})
			case 1:
				key := fmt.Sprintf("k%d", rapid.IntRange(0, 6).Draw(t, "key"))
				n.step(testID(i), Delete{Key: key})
			case 2:
				j := rapid.IntRange(1, nodes).Draw(t, "peer")
				n.reconcile(testID(i), testID(j))
			case 3:
				target := rapid.IntRange(1, nodes+2).Draw(t, "revoked")
				n.step(testID(i), Revoke{ID: testID(target)})
			}
		}
		// A full round between every pair in sequence makes all equal.
		for i := 1; i <= nodes; i++ {
			for j := 1; j <= nodes; j++ {
				n.reconcile(testID(i), testID(j))
			}
		}
		var honest []*Store
		for i := 1; i <= nodes; i++ {
			s := n.stores[testID(i)]
			checkInvariants(t, s)
			if !n.stores[testID(1)].IsRevoked(testID(i)) {
				honest = append(honest, s)
			}
		}
		for _, s := range honest {
			if s.Digest() != honest[0].Digest() {
				t.Fatalf("replicas not revoked differ: %v and %v", s.Revocations(), honest[0].Revocations())
			}
		}
	})
}
