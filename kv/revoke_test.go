package kv

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
)

// denyLists returns the DenyList outputs among outs.
func denyLists(outs []any) [][]peer.ID {
	var lists [][]peer.ID
	for _, out := range outs {
		if d, ok := out.(DenyList); ok {
			lists = append(lists, d.IDs)
		}
	}
	return lists
}

// A revocation is a signed record replicated like any other: every replica
// that receives it reports the deny list, refuses the records the revoked
// node writes afterwards (counted), and keeps those it wrote before.
func TestRevocationRefusesRecordsWrittenAfterIt(t *testing.T) {
	n := newDirectNet(t, epoch)
	n.broadcast = true
	a, b := newTestStore(t, 1, nil, nil), newTestStore(t, 2, nil, nil)
	n.add(testInfo(1), a)
	n.add(testInfo(2), b)
	before := remoteWrite(3, "before", []byte("v"), epoch.Add(-time.Second).UnixNano())
	fill(t, b, []Record{before})

	a.Step(epoch, Revoke{ReqID: 7, ID: testID(3)})
	outs := drain(a)
	var res Result
	for _, out := range outs {
		if r, ok := out.(Result); ok {
			res = r
		}
	}
	if res.Err != nil || res.ReqID != 7 || res.Record.Key != RevocationKey(testID(3)) {
		t.Fatalf("Revoke result %+v", res)
	}
	if lists := denyLists(outs); len(lists) != 1 || !slices.Equal(lists[0], []peer.ID{testID(3)}) {
		t.Fatalf("deny lists %v", lists)
	}
	// Deliver the broadcast to b.
	for _, out := range outs {
		if bc, ok := out.(Broadcast); ok {
			b.Step(epoch, FromBroadcast{From: testInfo(1), Payload: bc.Payload})
		}
	}
	if lists := denyLists(drain(b)); len(lists) != 1 || !b.IsRevoked(testID(3)) {
		t.Fatalf("b's deny lists %v", lists)
	}
	if got := b.Revocations(); len(got) != 1 || got[0].ID != testID(3) || got[0].By != testID(1) {
		t.Fatalf("b's revocations %+v", got)
	}
	after := remoteWrite(3, "after", []byte("v"), epoch.Add(time.Millisecond).UnixNano())
	for _, s := range []*Store{a, b} {
		s.Step(epoch.Add(time.Second), overlay.Received{From: testInfo(3), Msg: &Update{Records: []Record{after}}})
		s.Step(epoch.Add(time.Second), overlay.Received{From: testInfo(3), Msg: &SyncRecords{Records: []Record{after}}})
		if _, ok := s.Get("after"); ok {
			t.Fatal("record written after the revocation applied")
		}
		if st := s.Stats(); st.RecordsRevoked != 2 {
			t.Fatalf("RecordsRevoked = %d, want 2", st.RecordsRevoked)
		}
	}
	if _, ok := b.Get("before"); !ok {
		t.Fatal("record written before the revocation lost")
	}
	// Revoking again is idempotent: the first revocation stands.
	again := stepResult(t, a, epoch.Add(time.Minute), Revoke{ID: testID(3)})
	if again.Err != nil || again.Record.Version != res.Record.Version {
		t.Fatalf("second Revoke = %+v, want the first revocation", again)
	}
}

// A record the revoked node wrote after its revocation, applied before the
// revocation arrived, is withdrawn when it does: watchers see a delete, and
// a replica that never applied it gives the earlier value back by
// anti-entropy, so that replicas converge.
func TestRevocationWithdrawsLaterRecordsAlreadyApplied(t *testing.T) {
	a, b := newTestStore(t, 1, nil, nil), newTestStore(t, 2, nil, nil)
	n := pairOf(t, a, b)
	old := remoteWrite(4, "config/db", []byte("db1"), epoch.Add(-time.Minute).UnixNano())
	fill(t, a, []Record{old})
	fill(t, b, []Record{old})
	a.Step(epoch, Revoke{ID: testID(3)})
	revocation := drain(a)
	late := remoteWrite(3, "config/db", []byte("evil"), epoch.Add(time.Second).UnixNano())
	fresh := remoteWrite(3, "config/new", []byte("evil"), epoch.Add(time.Second).UnixNano())
	fill(t, b, []Record{late, fresh})
	if rec, _ := b.Get("config/db"); string(rec.Value) != "evil" {
		t.Fatal("setup: late write not applied on b")
	}
	for _, out := range revocation {
		if bc, ok := out.(Broadcast); ok {
			b.Step(epoch.Add(2*time.Second), FromBroadcast{From: testInfo(1), Payload: bc.Payload})
		}
	}
	var deletes []string
	for _, out := range drain(b) {
		if c, ok := out.(Changed); ok && c.Record.Deleted {
			deletes = append(deletes, c.Record.Key)
		}
	}
	if !slices.Equal(deletes, []string{"config/db", "config/new"}) {
		t.Fatalf("withdrawn keys %v", deletes)
	}
	if st := b.Stats(); st.RecordsWithdrawn != 2 {
		t.Fatalf("RecordsWithdrawn = %d", st.RecordsWithdrawn)
	}
	checkInvariants(t, b)
	n.now = epoch.Add(3 * time.Second)
	n.reconcile(testID(1), testID(2))
	if rec, _ := b.Get("config/db"); string(rec.Value) != "db1" {
		t.Fatalf("earlier value not repaired: %q", rec.Value)
	}
	if a.Digest() != b.Digest() {
		t.Fatal("replicas differ after anti-entropy")
	}
}

// With Config.Admins set, only admins revoke: a member's Revoke fails and a
// revocation it signed is refused and counted by every replica.
func TestOnlyAdminsRevokeWhenAdminsAreSet(t *testing.T) {
	admins := func(c *Config) { c.Admins = []peer.ID{testID(1)} }
	admin, member := newTestStore(t, 1, nil, admins), newTestStore(t, 2, nil, admins)
	if res := stepResult(t, member, epoch, Revoke{ID: testID(3)}); !errors.Is(res.Err, ErrNotAdmin) {
		t.Fatalf("member's Revoke = %v, want ErrNotAdmin", res.Err)
	}
	// An insider writes the revocation record itself.
	forged := signed(Record{Key: RevocationKey(testID(3)), Value: []byte("{}"), Version: Version{Time: HLC{Wall: epoch.UnixNano()}, Writer: testID(2)}})
	admin.Step(epoch, overlay.Received{From: testInfo(2), Msg: &SyncRecords{Records: []Record{forged}}})
	if admin.IsRevoked(testID(3)) || admin.Stats().RecordsUnauthorized != 1 {
		t.Fatalf("revocation by a member applied: %+v", admin.Stats())
	}
	res := stepResult(t, admin, epoch, Revoke{ID: testID(3)})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	member.Step(epoch, overlay.Received{From: testInfo(1), Msg: &SyncRecords{Records: []Record{res.Record}}})
	if !member.IsRevoked(testID(3)) {
		t.Fatal("admin's revocation refused")
	}
	if res := stepResult(t, admin, epoch, Revoke{ID: testID(1)}); !errors.Is(res.Err, ErrBadRevocation) {
		t.Fatalf("self-revocation = %v", res.Err)
	}
}

// Keys under ReservedPrefix cannot be written or deleted by Put and Delete,
// and a peer cannot delete a revocation nor write other reserved keys.
func TestReservedKeysAreRefused(t *testing.T) {
	s := newTestStore(t, 1, nil, nil)
	for _, input := range []any{Put{Key: ReservedPrefix + "x", Value: []byte("v")}, Put{Key: RevocationKey(testID(3))}} {
		if res := stepResult(t, s, epoch, input); !errors.Is(res.Err, ErrReservedKey) {
			t.Fatalf("%+v = %v, want ErrReservedKey", input, res.Err)
		}
	}
	rev := stepResult(t, s, epoch, Revoke{ID: testID(3)})
	if res := stepResult(t, s, epoch, Delete{Key: rev.Record.Key}); !errors.Is(res.Err, ErrReservedKey) {
		t.Fatalf("Delete of a revocation = %v", res.Err)
	}
	unrevoke := signed(Record{Key: rev.Record.Key, Version: Version{Time: HLC{Wall: epoch.UnixNano() - 5}, Writer: testID(2)}, Deleted: true}) // earlier: it would win
	other := remoteWrite(2, ReservedPrefix+"keyring", []byte("v"), epoch.UnixNano())
	badID := remoteWrite(2, RevokedPrefix+"not-an-id", []byte("v"), epoch.UnixNano())
	s.Step(epoch, overlay.Received{From: testInfo(2), Msg: &SyncRecords{Records: []Record{unrevoke, other, badID}}})
	if !s.IsRevoked(testID(3)) || s.Stats().RecordsRejected != 3 {
		t.Fatalf("reserved records applied: revoked %v, %+v", s.IsRevoked(testID(3)), s.Stats())
	}
}

// Of two revocations of one node made on two replicas, the earlier wins on
// both after anti-entropy, whichever replica starts: a later revocation
// cannot move the date after which the node's records are refused.
func TestTheEarlierRevocationWins(t *testing.T) {
	for _, initiator := range []int{1, 2} {
		a, b := newTestStore(t, 1, nil, nil), newTestStore(t, 2, nil, nil)
		first := stepResult(t, a, epoch, Revoke{ID: testID(3)})
		stepResult(t, b, epoch.Add(time.Minute), Revoke{ID: testID(3)})
		n := pairOf(t, a, b)
		n.now = epoch.Add(2 * time.Minute)
		n.reconcile(testID(initiator), testID(3-initiator))
		for _, s := range []*Store{a, b} {
			if got := s.Revocations(); len(got) != 1 || got[0].At != first.Record.Version.Time || got[0].By != testID(1) {
				t.Fatalf("initiator %d: revocations %+v", initiator, got)
			}
		}
		if a.Digest() != b.Digest() {
			t.Fatalf("initiator %d: digests differ", initiator)
		}
	}
}

// The deny list is kept in the backend: a restarted store knows it at once.
func TestRevocationsSurviveARestart(t *testing.T) {
	backend := NewMemory()
	s := newTestStore(t, 1, backend, nil)
	stepResult(t, s, epoch, Revoke{ID: testID(3)})
	restarted := newTestStore(t, 1, backend, nil)
	if !restarted.IsRevoked(testID(3)) {
		t.Fatal("revocation lost on restart")
	}
}

// Two nodes that revoke each other: the earlier revocation stands and
// withdraws the later one (made by a node already revoked), on every
// replica and whatever the order of the two records in one batch. Found by
// TestAntiEntropyConvergesWhateverTheInterleaving: the later revocation,
// withdrawn while the batch was applied, came back into the deny list.
func TestMutualRevocationInOneBatchKeepsTheEarlier(t *testing.T) {
	revocation := func(by, target int, wall int64) Record {
		return remoteWrite(by, RevocationKey(testID(target)), []byte(`{}`), wall)
	}
	first := revocation(1, 3, epoch.Add(-2*time.Second).UnixNano())
	second := revocation(3, 1, epoch.Add(-time.Second).UnixNano())
	for _, batch := range [][]Record{{first, second}, {second, first}} {
		for _, viaSync := range []bool{false, true} {
			s := newTestStore(t, 2, nil, nil)
			var msg any = &Update{Records: batch}
			if viaSync {
				msg = &SyncRecords{Records: batch}
			}
			s.Step(epoch, overlay.Received{From: testInfo(4), Msg: msg})
			drain(s)
			got := s.Revocations()
			if len(got) != 1 || got[0].ID != testID(3) || got[0].By != testID(1) {
				t.Fatalf("batch %s first, sync %v: revocations %+v, want only node 3's by node 1", batch[0].Key, viaSync, got)
			}
			if _, ok := s.Get(second.Key); ok {
				t.Fatalf("batch %s first: the later revocation is still held", batch[0].Key)
			}
			checkInvariants(t, s)
		}
	}
}
