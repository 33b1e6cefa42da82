package boltstore

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/goleak"

	"github.com/p2p-go/p2p/kv"
	"github.com/p2p-go/p2p/kv/kvtest"
	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// epoch is the virtual time tests start at.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// testKey is the writing node's key.
var testKey = func() *peer.Key {
	seed := sha256.Sum256([]byte("boltstore test node"))
	key, err := peer.KeyFromSeed(seed[:])
	if err != nil {
		panic(err)
	}
	return key
}()

// TestBackendContract runs the kv.Backend contract against a bbolt file.
func TestBackendContract(t *testing.T) {
	b, err := Open(filepath.Join(t.TempDir(), File))
	if err != nil {
		t.Fatal(err)
	}
	kvtest.BackendContract(t, b)
}

func newStore(t *testing.T, b *Bolt) *kv.Store {
	t.Helper()
	s, err := kv.New(kv.Config{Key: testKey, Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// stepResult feeds a write to s and carries out its outputs as a runtime
// does: the Persist first, on b, then the Result.
func stepResult(t *testing.T, s *kv.Store, b *Bolt, now time.Time, input any) kv.Result {
	t.Helper()
	s.Step(now, input)
	var result *kv.Result
	for _, out := range s.Drain(nil) {
		switch out := out.(type) {
		case kv.Persist:
			err := out.WriteTo(b)
			s.Advance(out.Seq, err)
			if err != nil {
				t.Fatal(err)
			}
		case kv.Result:
			result = &out
		}
	}
	if result == nil {
		t.Fatalf("no Result for %T", input)
	}
	return *result
}

// A node restarted over its bbolt file gets back its records, digest and
// clock: its next write still wins over what it wrote before the restart,
// even if its physical clock went backwards meanwhile.
func TestBoltRestartKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t, b)
	for i := range 20 {
		if r := stepResult(t, s, b, epoch, kv.Put{Key: fmt.Sprintf("k%02d", i), Value: []byte{byte(i)}}); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	stepResult(t, s, b, epoch, kv.Delete{Key: "k03"})
	digest, last := s.Digest(), s.Clock()
	b.Close()

	b, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	restarted := newStore(t, b)
	if restarted.Digest() != digest || restarted.Len() != 19 || restarted.Stats().Tombstones != 1 {
		t.Fatalf("after restart: len %d, digest equal %v", restarted.Len(), restarted.Digest() == digest)
	}
	if rec, ok := restarted.Get("k07"); !ok || rec.Value[0] != 7 {
		t.Fatalf("Get(k07) = %+v, %v", rec, ok)
	}
	if restarted.Clock() != last {
		t.Errorf("clock %v, want %v", restarted.Clock(), last)
	}
	r := stepResult(t, restarted, b, epoch.Add(-time.Hour), kv.Put{Key: "k07", Value: []byte("new")})
	if r.Err != nil || r.Record.Version.Time.Compare(last) <= 0 {
		t.Fatalf("write after restart: %+v", r)
	}
	if rec, found, err := b.Get("k07"); err != nil || !found || string(rec.Value) != "new" {
		t.Fatalf("the write's Persist did not reach the file: %+v, %v, %v", rec, found, err)
	}
	if n := len(restarted.List("")); n != 19 {
		t.Errorf("List after restart: %d records, want 19", n)
	}
	restarted.Step(epoch, overlay.Tick{})
}

func TestBoltRefusesACorruptRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// A record stored under another key's name fails to load.
	rec := Record{Key: "other", Value: []byte("v"), Version: kv.Version{Time: kv.HLC{Wall: 1}, Writer: testKey.ID()}}.Sign(testKey)
	if err := b.Write([]Record{rec}, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.db.Update(func(tx *bolt.Tx) error {
		raw := tx.Bucket(boltRecords).Get([]byte("other"))
		return tx.Bucket(boltRecords).Put([]byte("mine"), bytes.Clone(raw))
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.New(kv.Config{Key: testKey, Backend: b}); !errors.Is(err, kv.ErrInvalidRecord) {
		t.Fatalf("New over a corrupt file = %v, want ErrInvalidRecord", err)
	}
}

// Changes queued by Bolt.WriteLazy are visible to Get and Scan at once,
// ordered with Write, and on disk after Close.
func TestBoltLazyWritesAreVisibleOrderedAndKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	version := func(wall int64) kv.Version { return kv.Version{Time: kv.HLC{Wall: wall}, Writer: testKey.ID()} }
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
	if err := b.WriteLazy([]Record{rec("d", "late", 7)}, nil); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("WriteLazy after Close = %v, want ErrClosed", err)
	}
	if b, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a, bv, c, gone, m := get("a"), get("b"), get("c"), get("gone"), get("m/04100"); a != "lazy-5" || bv != "lazy-1" || c != "sync-4" || gone != "<none>" || m != "v" {
		t.Fatalf("after reopening: a=%s b=%s c=%s gone=%s m=%s", a, bv, c, gone, m)
	}
}

// Lazy writes, Gets and Writes from several goroutines (run with -race).
func TestBoltLazyWritesConcurrently(t *testing.T) {
	b, err := Open(filepath.Join(t.TempDir(), File))
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
				r := Record{Key: key, Value: []byte{byte(g)}, Version: kv.Version{Time: kv.HLC{Wall: int64(i + 1)}, Writer: testKey.ID()}}
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
	path := filepath.Join(t.TempDir(), File)
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(boltMeta).Put(boltFormatK, []byte{1}) }); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, err := Open(path); !errors.Is(err, ErrOldFormat) {
		t.Fatalf("Open of a format 1 file = %v, want ErrOldFormat", err)
	}
}
