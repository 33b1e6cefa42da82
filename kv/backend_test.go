package kv

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/p2p-go/p2p/overlay"
)

// TestBackendContract runs the same checks against both backends.
func TestBackendContract(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) Backend
	}{
		{"memory", func(*testing.T) Backend { return NewMemory() }},
		{"bolt", func(t *testing.T) Backend {
			b, err := OpenBolt(filepath.Join(t.TempDir(), BoltFile))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { testBackendContract(t, tc.open(t)) })
	}
}

func testBackendContract(t *testing.T, b Backend) {
	version := func(wall int64) Version { return Version{Time: HLC{Wall: wall}, Writer: testID(1)} }
	if _, found, err := b.Get("missing"); found || err != nil {
		t.Fatalf("Get(missing) = %v, %v", found, err)
	}
	records := []Record{
		{Key: "b/2", Value: []byte("two"), Version: version(2)},
		{Key: "a/1", Value: []byte("one"), Version: version(1)},
		{Key: "b/1", Version: version(3), Deleted: true},
		{Key: "b/3", Value: []byte{}, Version: version(4)},
		{Key: "c", Value: []byte("c"), Version: version(5)},
	}
	if err := b.Write(records, nil); err != nil {
		t.Fatal(err)
	}
	rec, found, err := b.Get("b/1")
	if err != nil || !found || !rec.Deleted || rec.Version != version(3) {
		t.Fatalf("Get(b/1) = %+v, %v, %v", rec, found, err)
	}
	rec, _, _ = b.Get("b/3")
	if rec.Value != nil {
		t.Errorf("empty value read back as %#v, want nil", rec.Value)
	}
	// The backend keeps its own copy.
	rec, _, _ = b.Get("a/1")
	rec.Value[0] = 'X'
	if again, _, _ := b.Get("a/1"); !bytes.Equal(again.Value, []byte("one")) {
		t.Errorf("Get returned shared memory: %q", again.Value)
	}
	var keys []string
	if err := b.Scan("b/", func(r Record) bool { keys = append(keys, r.Key); return true }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(keys) != "[b/1 b/2 b/3]" {
		t.Errorf("Scan(b/) = %v", keys)
	}
	keys = nil
	b.Scan("", func(r Record) bool { keys = append(keys, r.Key); return len(keys) < 2 })
	if fmt.Sprint(keys) != "[a/1 b/1]" {
		t.Errorf("Scan stopped early = %v", keys)
	}
	// Overwrite and remove in one write.
	if err := b.Write([]Record{{Key: "a/1", Value: []byte("uno"), Version: version(6)}}, []string{"c", "never"}); err != nil {
		t.Fatal(err)
	}
	if rec, _, _ := b.Get("a/1"); string(rec.Value) != "uno" {
		t.Errorf("overwrite: %q", rec.Value)
	}
	if _, found, _ := b.Get("c"); found {
		t.Error("removed key still found")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, _, err := b.Get("a/1"); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close = %v, want ErrClosed", err)
	}
}

// A node restarted over its bbolt file gets back its records, digest and
// clock: its next write still wins over what it wrote before the restart,
// even if its physical clock went backwards meanwhile.
func TestBoltRestartKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), BoltFile)
	b, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	s := newTestStore(t, 1, b, nil)
	for i := range 20 {
		if r := stepResult(t, s, epoch, Put{Key: fmt.Sprintf("k%02d", i), Value: []byte{byte(i)}}); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	stepResult(t, s, epoch, Delete{Key: "k03"})
	digest, last := s.Digest(), s.Clock()
	b.Close()

	b, err = OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	restarted := newTestStore(t, 1, b, nil)
	if restarted.Digest() != digest || restarted.Len() != 19 || restarted.Stats().Tombstones != 1 {
		t.Fatalf("after restart: len %d, digest equal %v", restarted.Len(), restarted.Digest() == digest)
	}
	if rec, ok := restarted.Get("k07"); !ok || rec.Value[0] != 7 {
		t.Fatalf("Get(k07) = %+v, %v", rec, ok)
	}
	if restarted.Clock() != last {
		t.Errorf("clock %v, want %v", restarted.Clock(), last)
	}
	r := stepResult(t, restarted, epoch.Add(-time.Hour), Put{Key: "k07", Value: []byte("new")})
	if r.Err != nil || r.Record.Version.Time.Compare(last) <= 0 {
		t.Fatalf("write after restart: %+v", r)
	}
	checkInvariants(t, restarted)
	restarted.Step(epoch, overlay.Tick{})
}

func TestBoltRefusesACorruptRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), BoltFile)
	b, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// A record stored under another key's name fails to load.
	rec := signed(Record{Key: "other", Value: []byte("v"), Version: Version{Time: HLC{Wall: 1}, Writer: testID(1)}})
	if err := b.Write([]Record{rec}, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.db.Update(func(tx *bolt.Tx) error {
		raw := tx.Bucket(boltRecords).Get([]byte("other"))
		return tx.Bucket(boltRecords).Put([]byte("mine"), bytes.Clone(raw))
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Key: testKey(1), Backend: b}); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("New over a corrupt file = %v, want ErrInvalidRecord", err)
	}
}

// Changes queued by Bolt.WriteLazy are visible to Get and Scan at once,
// ordered with Write, and on disk after Close.
func TestBoltLazyWritesAreVisibleOrderedAndKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), BoltFile)
	b, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	version := func(wall int64) Version { return Version{Time: HLC{Wall: wall}, Writer: testID(2)} }
	rec := func(key, value string, wall int64) Record {
		return Record{Key: key, Value: []byte(value), Version: version(wall)}
	}
	if err := b.Write([]Record{rec("a", "sync-1", 1), rec("gone", "x", 1)}, nil); err != nil {
		t.Fatal(err)
	}
	value := []byte("lazy-2")
	if err := b.WriteLazy([]Record{{Key: "a", Value: value, Version: version(2)}, rec("b", "lazy-1", 2)}, []string{"gone"}); err != nil {
		t.Fatal(err)
	}
	value[0] = 'X' // the backend keeps its own copy
	get := func(key string) string {
		t.Helper()
		r, found, err := b.Get(key)
		if err != nil {
			t.Fatal(err)
		}
		if !found {
			return "<none>"
		}
		return string(r.Value)
	}
	if a, bv, gone := get("a"), get("b"), get("gone"); a != "lazy-2" || bv != "lazy-1" || gone != "<none>" {
		t.Fatalf("after WriteLazy: a=%s b=%s gone=%s", a, bv, gone)
	}
	var keys []string
	if err := b.Scan("", func(r Record) bool { keys = append(keys, r.Key+"="+string(r.Value)); return true }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(keys) != "[a=lazy-2 b=lazy-1]" {
		t.Errorf("Scan = %v", keys)
	}
	// A Write after a lazy write of the same key wins, and the other way round.
	if err := b.WriteLazy([]Record{rec("c", "lazy-3", 3)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Write([]Record{rec("c", "sync-4", 4)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteLazy([]Record{rec("a", "lazy-5", 5)}, nil); err != nil {
		t.Fatal(err)
	}
	// More than the queue's bound at once.
	var many []Record
	for i := range maxLazyPending + 10 {
		many = append(many, rec(fmt.Sprintf("m/%05d", i), "v", 6))
	}
	if err := b.WriteLazy(many, nil); err != nil {
		t.Fatal(err)
	}
	if c, a := get("c"), get("a"); c != "sync-4" || a != "lazy-5" {
		t.Fatalf("c=%s a=%s, want sync-4 lazy-5", c, a)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteLazy([]Record{rec("d", "late", 7)}, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("WriteLazy after Close = %v, want ErrClosed", err)
	}
	if b, err = OpenBolt(path); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a, bv, c, gone, m := get("a"), get("b"), get("c"), get("gone"), get("m/04100"); a != "lazy-5" || bv != "lazy-1" || c != "sync-4" || gone != "<none>" || m != "v" {
		t.Fatalf("after reopening: a=%s b=%s c=%s gone=%s m=%s", a, bv, c, gone, m)
	}
}

// Lazy writes, Gets and Writes from several goroutines (run with -race).
func TestBoltLazyWritesConcurrently(t *testing.T) {
	b, err := OpenBolt(filepath.Join(t.TempDir(), BoltFile))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				key := fmt.Sprintf("k%d", i%20)
				r := Record{Key: key, Value: []byte{byte(g)}, Version: Version{Time: HLC{Wall: int64(i + 1)}, Writer: testID(g + 1)}}
				var err error
				if g == 0 && i%50 == 0 {
					err = b.Write([]Record{r}, nil)
				} else {
					err = b.WriteLazy([]Record{r}, nil)
				}
				if err != nil {
					t.Error(err)
					return
				}
				if _, found, err := b.Get(key); err != nil || !found {
					t.Errorf("Get(%s) = %v, %v right after writing it", key, found, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// A file written before records were signed (format 1) is refused with
// ErrOldFormat, which says how to recover.
func TestBoltRefusesAFileFromBeforeSignatures(t *testing.T) {
	path := filepath.Join(t.TempDir(), BoltFile)
	b, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(boltMeta).Put(boltFormatK, []byte{1}) }); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, err := OpenBolt(path); !errors.Is(err, ErrOldFormat) {
		t.Fatalf("OpenBolt of a format 1 file = %v, want ErrOldFormat", err)
	}
}
