package p2p_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2p-go/p2p"
	"github.com/p2p-go/p2p/kv"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport/memnet"
)

// errDiskFull is what failingBackend's writes return while it fails.
var errDiskFull = errors.New("disk full")

// failingBackend is an in-memory backend whose durable writes can be made to
// fail, as a full disk would.
type failingBackend struct {
	*kv.Memory
	failing atomic.Bool
}

func (f *failingBackend) Write(put []kv.Record, remove []string) error {
	if f.failing.Load() {
		return errDiskFull
	}
	return f.Memory.Write(put, remove)
}

// Store.Put returns only once the runtime has carried out the core's Persist
// output: the record is in the backend when Put returns, and a write the
// backend refuses fails the Put.
func TestPutReturnsAfterTheRuntimeWroteTheBackend(t *testing.T) {
	net := memnet.New(memnet.Config{Seed: 1})
	defer net.Close()
	key, err := peer.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := net.Listen(key, "node-0")
	if err != nil {
		t.Fatal(err)
	}
	backend := &failingBackend{Memory: kv.NewMemory()}
	b, err := p2p.NewBroadcaster(p2p.Config{Key: key, Transport: tr, StoreBackend: backend, Seed: 1, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Store().Put(ctx, "app/mode", []byte("blue")); err != nil {
		t.Fatal(err)
	}
	if rec, found, err := backend.Get("app/mode"); err != nil || !found || string(rec.Value) != "blue" {
		t.Fatalf("backend after Put: %+v, %v, %v", rec, found, err)
	}
	backend.failing.Store(true)
	if _, err := b.Store().Put(ctx, "app/mode", []byte("green")); !errors.Is(err, errDiskFull) {
		t.Fatalf("Put on a failing disk = %v, want errDiskFull", err)
	}
	stats, _, err := b.Store().Stats(ctx)
	if err != nil || stats.BackendErrors != 1 {
		t.Fatalf("BackendErrors = %d, %v; want 1", stats.BackendErrors, err)
	}
}
