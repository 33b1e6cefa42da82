package kv

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
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
	rec := Record{Key: "other", Value: []byte("v"), Version: Version{Time: HLC{Wall: 1}, Writer: testID(1)}}
	if err := b.Write([]Record{rec}, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.db.Update(func(tx *bolt.Tx) error {
		raw := tx.Bucket(boltRecords).Get([]byte("other"))
		return tx.Bucket(boltRecords).Put([]byte("mine"), bytes.Clone(raw))
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Self: testID(1), Backend: b}); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("New over a corrupt file = %v, want ErrInvalidRecord", err)
	}
}
