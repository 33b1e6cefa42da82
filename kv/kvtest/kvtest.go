package kvtest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/p2p-go/p2p/kv"
	"github.com/p2p-go/p2p/peer"
)

// writer is the node named as the writer of the contract's records.
var writer = peer.IDFromPublicKey(make([]byte, 32))

// BackendContract checks b against the kv.Backend contract: reads return
// private copies, Scan is ordered by key and stops when asked, a Write both
// stores and removes, and a closed backend refuses reads with kv.ErrClosed.
// It closes b.
func BackendContract(t *testing.T, b kv.Backend) {
	t.Helper()
	version := func(wall int64) kv.Version { return kv.Version{Time: kv.HLC{Wall: wall}, Writer: writer} }
	if _, found, err := b.Get("missing"); found || err != nil {
		t.Fatalf("Get(missing) = %v, %v", found, err)
	}
	records := []kv.Record{
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
	if err := b.Scan("b/", func(r kv.Record) bool { keys = append(keys, r.Key); return true }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(keys) != "[b/1 b/2 b/3]" {
		t.Errorf("Scan(b/) = %v", keys)
	}
	keys = nil
	b.Scan("", func(r kv.Record) bool { keys = append(keys, r.Key); return len(keys) < 2 })
	if fmt.Sprint(keys) != "[a/1 b/1]" {
		t.Errorf("Scan stopped early = %v", keys)
	}
	// Overwrite and remove in one write.
	if err := b.Write([]kv.Record{{Key: "a/1", Value: []byte("uno"), Version: version(6)}}, []string{"c", "never"}); err != nil {
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
	if _, _, err := b.Get("a/1"); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("Get after Close = %v, want ErrClosed", err)
	}
}
