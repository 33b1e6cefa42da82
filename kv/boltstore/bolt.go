package boltstore

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/p2p-go/p2p/kv"
	"github.com/p2p-go/p2p/wire"
)

// Record is the store's record, as package kv defines it.
type Record = kv.Record

// File is the conventional name of the store's file inside a node's data
// directory.
const File = "kv.db"

// boltFormat is the version of the on-disk layout, kept in the meta bucket.
// Format 2 records carry their writer's signature; format 1 records had
// none, and a format 1 file is refused (see ErrOldFormat).
const boltFormat = 2

// ErrOldFormat is returned by Open for a store file written before
// records were signed. Its records cannot be proved to come from their
// writers: remove the file, and the node learns the store again from its
// peers by anti-entropy (writes that only this node held are lost).
var ErrOldFormat = errors.New("boltstore: store file from before record signatures (format 1): remove it to re-learn the store from the peers")

var (
	boltRecords = []byte("records")
	boltMeta    = []byte("meta")
	boltFormatK = []byte("format")
)

// Bolt is a [kv.Backend] stored in a go.etcd.io/bbolt file: one bucket mapping
// each key to its CBOR-encoded record. Every Write is one bbolt transaction
// committed with fsync, so a write is durable when Write returns. WriteLazy
// only queues its change: a goroutine of the Bolt commits what is queued, in
// one transaction without fsync, 20 ms after the first change (or sooner,
// with the next Write, Scan or Close). Get and Scan see queued changes at
// once. Open one with [Open].
type Bolt struct {
	db        *bolt.DB
	writeMu   sync.Mutex // serialises commits, so that NoSync applies to the lazy ones only
	closeOnce sync.Once
	closeErr  error

	mu       sync.Mutex        // guards the fields below
	pending  map[string]lazyOp // queued by WriteLazy, not yet being committed
	flushing map[string]lazyOp // being committed (visible until the commit ends)
	lazyErr  error             // the last lazy commit's failure, returned by the next write
	closed   bool
	wake     chan struct{} // capacity 1: pending has changes
	stop     chan struct{} // closed by Close
	done     chan struct{} // closed when the committing goroutine has exited
}

// lazyOp is one queued change of a key: a record to store, or a removal.
type lazyOp struct {
	rec     Record
	encoded []byte
	remove  bool
}

// boltInitialMmap is the address space mapped for the file at first. bbolt
// maps the file again, pausing every reader, each time it outgrows the
// mapping; starting at 16 MiB of address space (not memory) spares a
// growing store those pauses.
const boltInitialMmap = 16 << 20

// lazyCommitDelay is how long changes queued by WriteLazy wait before they
// are committed, together.
const lazyCommitDelay = 20 * time.Millisecond

// maxLazyPending bounds the changes WriteLazy queues: past it, WriteLazy
// commits them itself, so that a slow disk slows the writer instead of
// growing memory.
const maxLazyPending = 4096

var _ kv.Backend = (*Bolt)(nil)

// Open opens (creating if needed) the bbolt file at path, conventionally
// filepath.Join(dataDir, File). Only one process may open a file at a
// time; Open gives up after one second if another holds it.
func Open(path string) (*Bolt, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, InitialMmapSize: boltInitialMmap})
	if err != nil {
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(boltRecords); err != nil {
			return err
		}
		meta, err := tx.CreateBucketIfNotExists(boltMeta)
		if err != nil {
			return err
		}
		if stored := meta.Get(boltFormatK); stored != nil {
			if len(stored) == 1 && stored[0] == 1 {
				return ErrOldFormat
			}
			if len(stored) != 1 || stored[0] != boltFormat {
				return fmt.Errorf("unsupported format %x, want %d", stored, boltFormat)
			}
			return nil
		}
		return meta.Put(boltFormatK, []byte{boltFormat})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	b := &Bolt{
		db:      db,
		pending: map[string]lazyOp{},
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go b.commitLoop()
	return b, nil
}

// Get implements kv.Backend.
func (b *Bolt) Get(key string) (Record, bool, error) {
	b.mu.Lock()
	op, queued := b.pending[key]
	if !queued {
		op, queued = b.flushing[key]
	}
	closed := b.closed
	b.mu.Unlock()
	switch {
	case closed:
		return Record{}, false, fmt.Errorf("boltstore: get %s: %w", quoteKey(key), kv.ErrClosed)
	case queued && op.remove:
		return Record{}, false, nil
	case queued:
		rec := op.rec
		rec.Value = bytes.Clone(rec.Value)
		return rec.Normalize(), true, nil
	}
	var (
		rec   Record
		found bool
	)
	err := b.db.View(func(tx *bolt.Tx) error {
		data := tx.Bucket(boltRecords).Get([]byte(key))
		if data == nil {
			return nil
		}
		found = true
		var err error
		rec, err = decodeStored(key, data)
		return err
	})
	if err != nil {
		return Record{}, false, b.wrap("get "+quoteKey(key), err)
	}
	return rec, found, nil
}

// Write implements kv.Backend: the change, and every change queued by
// WriteLazy before it, is on disk (fsync) when Write returns.
func (b *Bolt) Write(put []Record, remove []string) error {
	ops, err := encodeOps(put, remove)
	if err != nil {
		return err
	}
	b.writeMu.Lock()
	defer b.writeMu.Unlock()
	return b.commit(ops, false)
}

// WriteLazy implements kv.LazyWriter: the change is queued and visible to Get
// and Scan at once; it reaches the file (without fsync) about 20 ms later,
// and the disk with the next Write or Close. A crash of the process
// can lose what is queued, which anti-entropy brings back. A failure of a
// lazy commit is returned by the next WriteLazy.
func (b *Bolt) WriteLazy(put []Record, remove []string) error {
	ops, err := encodeOps(put, remove)
	if err != nil {
		return err
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return fmt.Errorf("boltstore: write: %w", kv.ErrClosed)
	}
	if err := b.lazyErr; err != nil {
		b.lazyErr = nil
		b.mu.Unlock()
		return err
	}
	for _, op := range ops {
		b.pending[op.key()] = op
	}
	full := len(b.pending) >= maxLazyPending
	b.mu.Unlock()
	if full {
		b.writeMu.Lock()
		defer b.writeMu.Unlock()
		return b.commit(nil, true)
	}
	select {
	case b.wake <- struct{}{}:
	default:
	}
	return nil
}

var _ kv.LazyWriter = (*Bolt)(nil)

func (op lazyOp) key() string { return op.rec.Key }

// encodeOps encodes the records to store (private copies) and the removals.
func encodeOps(put []Record, remove []string) ([]lazyOp, error) {
	ops := make([]lazyOp, 0, len(put)+len(remove))
	for _, rec := range put {
		rec = rec.Normalize()
		rec.Value = bytes.Clone(rec.Value)
		data, err := wire.MarshalValue(rec)
		if err != nil {
			return nil, fmt.Errorf("boltstore: encode key %s: %w", quoteKey(rec.Key), err)
		}
		ops = append(ops, lazyOp{rec: rec, encoded: data})
	}
	for _, key := range remove {
		ops = append(ops, lazyOp{rec: Record{Key: key}, remove: true})
	}
	return ops, nil
}

// commitLoop commits what WriteLazy queues until Close.
func (b *Bolt) commitLoop() {
	defer close(b.done)
	for {
		select {
		case <-b.wake:
		case <-b.stop:
			return
		}
		// Let what woke us finish first (the node forwarding the update
		// it just stored), and gather more changes into one commit.
		select {
		case <-time.After(lazyCommitDelay):
		case <-b.stop:
			return
		}
		b.writeMu.Lock()
		if err := b.commit(nil, true); err != nil {
			b.mu.Lock()
			b.lazyErr = err
			b.mu.Unlock()
		}
		b.writeMu.Unlock()
	}
}

// commit writes the queued lazy changes, then ops, in one transaction,
// with fsync unless lazy. The caller holds writeMu.
func (b *Bolt) commit(ops []lazyOp, lazy bool) error {
	b.mu.Lock()
	var queued map[string]lazyOp
	if len(b.pending) > 0 {
		queued = b.pending
		b.pending = map[string]lazyOp{}
		b.flushing = queued
	}
	b.mu.Unlock()
	if len(queued) == 0 && len(ops) == 0 {
		return nil
	}
	defer func() {
		b.mu.Lock()
		b.flushing = nil
		b.mu.Unlock()
	}()
	if lazy {
		b.db.NoSync = true
		defer func() { b.db.NoSync = false }()
	}
	err := b.db.Update(func(tx *bolt.Tx) error {
		bucket := tx.Bucket(boltRecords)
		apply := func(op lazyOp) error {
			if op.remove {
				if err := bucket.Delete([]byte(op.rec.Key)); err != nil {
					return fmt.Errorf("delete %s: %w", quoteKey(op.rec.Key), err)
				}
				return nil
			}
			if err := bucket.Put([]byte(op.rec.Key), op.encoded); err != nil {
				return fmt.Errorf("put %s: %w", quoteKey(op.rec.Key), err)
			}
			return nil
		}
		for _, op := range queued {
			if err := apply(op); err != nil {
				return err
			}
		}
		for _, op := range ops {
			if err := apply(op); err != nil {
				return err
			}
		}
		return nil
	})
	return b.wrap("write", err)
}

// Scan implements kv.Backend. It commits the changes WriteLazy queued first, so
// that they are scanned too.
func (b *Bolt) Scan(prefix string, fn func(Record) bool) error {
	b.writeMu.Lock()
	err := b.commit(nil, true)
	b.writeMu.Unlock()
	if err != nil {
		return err
	}
	err = b.db.View(func(tx *bolt.Tx) error {
		cursor := tx.Bucket(boltRecords).Cursor()
		start := []byte(prefix)
		for k, v := cursor.Seek(start); k != nil && bytes.HasPrefix(k, start); k, v = cursor.Next() {
			rec, err := decodeStored(string(k), v)
			if err != nil {
				return err
			}
			if !fn(rec) {
				return nil
			}
		}
		return nil
	})
	return b.wrap("scan", err)
}

// Close implements kv.Backend; it may be called more than once.
// Changes queued by WriteLazy are committed, with fsync, first.
func (b *Bolt) Close() error {
	b.closeOnce.Do(func() {
		close(b.stop)
		<-b.done
		b.writeMu.Lock()
		flushErr := b.commit(nil, false)
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		b.closeErr = errors.Join(flushErr, b.db.Close())
		b.writeMu.Unlock()
	})
	return b.closeErr
}

// Path returns the file's path.
func (b *Bolt) Path() string { return b.db.Path() }

func (b *Bolt) wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, bolt.ErrDatabaseNotOpen):
		return fmt.Errorf("boltstore: %s: %w", op, kv.ErrClosed)
	}
	return fmt.Errorf("boltstore: %s %s: %w", b.db.Path(), op, err)
}

// decodeStored decodes and validates a record read from the file. The bytes
// are copied by the decoder, so the record outlives the transaction.
func decodeStored(key string, data []byte) (Record, error) {
	var rec Record
	if err := wire.UnmarshalValue(data, &rec); err != nil {
		return Record{}, fmt.Errorf("decode key %s: %w", quoteKey(key), err)
	}
	if rec.Key != key {
		return Record{}, fmt.Errorf("%w: stored under %s but names %s", kv.ErrInvalidRecord, quoteKey(key), quoteKey(rec.Key))
	}
	if err := rec.Validate(); err != nil {
		return Record{}, err
	}
	return rec.Normalize(), nil
}

// quoteKey quotes a key for an error message, cut to a readable length.
func quoteKey(key string) string {
	const maxShown = 64
	if len(key) > maxShown {
		return fmt.Sprintf("%q…", key[:maxShown])
	}
	return fmt.Sprintf("%q", key)
}
