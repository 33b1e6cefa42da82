package p2p_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2p-go/p2p"
	"github.com/p2p-go/p2p/internal/testutil"
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

// A durable Put whose write fails changes nothing anywhere: Put returns the
// error, the writing node still serves the old value, and no other node
// learns the new one (it was not broadcast).
func TestFailedPutChangesNothingAnywhere(t *testing.T) {
	net := memnet.New(memnet.Config{Seed: 2})
	defer net.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	failing := &failingBackend{Memory: kv.NewMemory()}
	var nodes []*p2p.Broadcaster
	for i, backend := range []kv.Backend{failing, kv.NewMemory()} {
		key, err := peer.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := net.Listen(key, fmt.Sprintf("node-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		var bootstrap []string
		if i > 0 {
			bootstrap = []string{"node-0"}
		}
		b, err := p2p.NewBroadcaster(p2p.Config{Key: key, Transport: tr, Bootstrap: bootstrap, StoreBackend: backend, Seed: uint64(i + 1), Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if err := b.Start(ctx); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, b)
	}
	value := func(i int, key string) string {
		rec, err := nodes[i].Store().Get(ctx, key)
		if err != nil {
			return err.Error()
		}
		return string(rec.Value)
	}
	if _, err := nodes[0].Store().Put(ctx, "app/mode", []byte("blue")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "node 1 holds the first write", func() bool { return value(1, "app/mode") == "blue" })

	failing.failing.Store(true)
	if _, err := nodes[0].Store().Put(ctx, "app/mode", []byte("green")); !errors.Is(err, errDiskFull) {
		t.Fatalf("Put on a failing disk = %v, want errDiskFull", err)
	}
	if got := value(0, "app/mode"); got != "blue" {
		t.Fatalf("writer serves %q after a failed Put, want blue", got)
	}
	if stats, _, err := nodes[0].Store().Stats(ctx); err != nil || stats.BackendErrors != 1 {
		t.Fatalf("BackendErrors = %d, %v; want 1", stats.BackendErrors, err)
	}
	// A later write from the same node reaches node 1 after anything the
	// failed one could have sent; node 1 must still hold blue then, and
	// both stores are identical.
	failing.failing.Store(false)
	if _, err := nodes[0].Store().Put(ctx, "app/other", []byte("1")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "node 1 holds the later write", func() bool { return value(1, "app/other") == "1" })
	if got := value(1, "app/mode"); got != "blue" {
		t.Fatalf("node 1 holds %q, want blue: the failed write was broadcast", got)
	}
	d0, err0 := nodes[0].Store().Digest(ctx)
	d1, err1 := nodes[1].Store().Digest(ctx)
	if err0 != nil || err1 != nil || d0 != d1 {
		t.Fatalf("digests differ: %x, %x (%v, %v)", d0, d1, err0, err1)
	}
}

// gatedBackend is an in-memory backend that counts its durable writes and
// can hold them until released, as a slow disk would.
type gatedBackend struct {
	*kv.Memory
	writes  atomic.Int64
	entered chan struct{} // receives once per write that waits at the gate
	gate    chan struct{} // closed: writes go through
}

func (g *gatedBackend) Write(put []kv.Record, remove []string) error {
	g.writes.Add(1)
	select {
	case <-g.gate:
	default:
		g.entered <- struct{}{}
		<-g.gate
	}
	return g.Memory.Write(put, remove)
}

// Puts that arrive while the disk writes an earlier one wait for it
// together and share the next write (one fsync on Bolt), and each returns
// only once its record is in the backend; the node's loop never waits for
// the disk meanwhile.
func TestPutsDuringAWriteShareTheNextWrite(t *testing.T) {
	net := memnet.New(memnet.Config{Seed: 3})
	defer net.Close()
	key, err := peer.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := net.Listen(key, "node-0")
	if err != nil {
		t.Fatal(err)
	}
	backend := &gatedBackend{Memory: kv.NewMemory(), entered: make(chan struct{}, 1), gate: make(chan struct{})}
	b, err := p2p.NewBroadcaster(p2p.Config{Key: key, Transport: tr, StoreBackend: backend, Seed: 3, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	const puts = 10
	errs := make(chan error, puts)
	put := func(i int) {
		_, err := b.Store().Put(ctx, fmt.Sprintf("app/%d", i), []byte("v"))
		errs <- err
	}
	go put(0)
	select {
	case <-backend.entered: // the first write is at the disk
	case <-ctx.Done():
		t.Fatal("the first Put never reached the backend")
	}
	for i := 1; i < puts; i++ {
		go put(i)
	}
	// The loop goes on while the disk is busy: every other Put is stepped
	// and its Persist waits for the writer.
	testutil.EventuallyWhy(t, 10*time.Second, "the other Puts to wait for the writer", func() (bool, string) {
		stats, _, err := b.Store().Stats(ctx)
		return err == nil && stats.Keys == puts && p2p.StoreWritesWaitingForTest(b) != 0, fmt.Sprintf("%d keys (%v)", stats.Keys, err)
	})
	select {
	case err := <-errs:
		t.Fatalf("a Put returned before its write: %v", err)
	default:
	}
	close(backend.gate)
	for range puts {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
		case <-ctx.Done():
			t.Fatal("a Put never returned")
		}
	}
	if got := backend.writes.Load(); got != 2 {
		t.Fatalf("%d durable writes for %d Puts, want 2: the first, then the nine that waited for it", got, puts)
	}
	for i := range puts {
		if _, found, err := backend.Get(fmt.Sprintf("app/%d", i)); err != nil || !found {
			t.Fatalf("app/%d not in the backend after its Put returned: %v", i, err)
		}
	}
}

// A Put whose write is still on its way to the disk when the node closes
// returns ErrClosed instead of waiting for a Result that will never come;
// Close returns once the write has ended.
func TestPutWaitingForTheDiskEndsWhenTheNodeCloses(t *testing.T) {
	net := memnet.New(memnet.Config{Seed: 4})
	defer net.Close()
	key, err := peer.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := net.Listen(key, "node-0")
	if err != nil {
		t.Fatal(err)
	}
	backend := &gatedBackend{Memory: kv.NewMemory(), entered: make(chan struct{}, 1), gate: make(chan struct{})}
	b, err := p2p.NewBroadcaster(p2p.Config{Key: key, Transport: tr, StoreBackend: backend, Seed: 4, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	putErr := make(chan error, 1)
	go func() {
		_, err := b.Store().Put(context.Background(), "app/mode", []byte("blue"))
		putErr <- err
	}()
	select {
	case <-backend.entered:
	case <-ctx.Done():
		t.Fatal("the Put never reached the backend")
	}
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	select {
	case err := <-putErr:
		if !errors.Is(err, p2p.ErrClosed) {
			t.Fatalf("Put during Close = %v, want ErrClosed", err)
		}
	case <-ctx.Done():
		t.Fatal("the Put still waits after Close began")
	}
	select {
	case <-closed:
		t.Fatal("Close returned while the disk writer was still writing")
	default:
	}
	close(backend.gate)
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("Close never returned")
	}
}
