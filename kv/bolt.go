package kv

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/p2p-go/p2p/wire"
)

// BoltFile is the conventional name of the store's file inside a node's data
// directory.
const BoltFile = "kv.db"

// boltFormat is the version of the on-disk layout, kept in the meta bucket.
const boltFormat = 1

var (
	boltRecords = []byte("records")
	boltMeta    = []byte("meta")
	boltFormatK = []byte("format")
)

// Bolt is a Backend stored in a go.etcd.io/bbolt file: one bucket mapping
// each key to its CBOR-encoded record. Every Write is one bbolt transaction
// committed with fsync, so a write is durable when Write returns; WriteLazy
// commits without the fsync. Open one
// with [OpenBolt].
type Bolt struct {
	db        *bolt.DB
	writeMu   sync.Mutex // serialises writes, so WriteLazy's NoSync applies to its own commit only
	closeOnce sync.Once
	closeErr  error
}

var _ Backend = (*Bolt)(nil)

// OpenBolt opens (creating if needed) the bbolt file at path, conventionally
// filepath.Join(dataDir, BoltFile). Only one process may open a file at a
// time; OpenBolt gives up after one second if another holds it.
func OpenBolt(path string) (*Bolt, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("kv: open %s: %w", path, err)
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
			if len(stored) != 1 || stored[0] != boltFormat {
				return fmt.Errorf("unsupported format %x, want %d", stored, boltFormat)
			}
			return nil
		}
		return meta.Put(boltFormatK, []byte{boltFormat})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("kv: open %s: %w", path, err)
	}
	return &Bolt{db: db}, nil
}

// Get implements Backend.
func (b *Bolt) Get(key string) (Record, bool, error) {
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

// Write implements Backend: the change is on disk (fsync) when Write returns.
func (b *Bolt) Write(put []Record, remove []string) error {
	b.writeMu.Lock()
	defer b.writeMu.Unlock()
	return b.write(put, remove)
}

// WriteLazy implements LazyWriter: the change is committed to the file but
// not flushed to the disk; it survives a crash of the process, and the next
// Write flushes it.
func (b *Bolt) WriteLazy(put []Record, remove []string) error {
	b.writeMu.Lock()
	defer b.writeMu.Unlock()
	b.db.NoSync = true
	defer func() { b.db.NoSync = false }()
	return b.write(put, remove)
}

var _ LazyWriter = (*Bolt)(nil)

func (b *Bolt) write(put []Record, remove []string) error {
	encoded := make([][]byte, len(put))
	for i, rec := range put {
		data, err := wire.MarshalValue(rec.normalize())
		if err != nil {
			return fmt.Errorf("kv: encode key %s: %w", quoteKey(rec.Key), err)
		}
		encoded[i] = data
	}
	err := b.db.Update(func(tx *bolt.Tx) error {
		bucket := tx.Bucket(boltRecords)
		for i, rec := range put {
			if err := bucket.Put([]byte(rec.Key), encoded[i]); err != nil {
				return fmt.Errorf("put %s: %w", quoteKey(rec.Key), err)
			}
		}
		for _, key := range remove {
			if err := bucket.Delete([]byte(key)); err != nil {
				return fmt.Errorf("delete %s: %w", quoteKey(key), err)
			}
		}
		return nil
	})
	return b.wrap("write", err)
}

// Scan implements Backend.
func (b *Bolt) Scan(prefix string, fn func(Record) bool) error {
	err := b.db.View(func(tx *bolt.Tx) error {
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

// Close implements Backend; it may be called more than once.
func (b *Bolt) Close() error {
	b.closeOnce.Do(func() { b.closeErr = b.db.Close() })
	return b.closeErr
}

// Path returns the file's path.
func (b *Bolt) Path() string { return b.db.Path() }

func (b *Bolt) wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, bolt.ErrDatabaseNotOpen):
		return fmt.Errorf("kv: bolt %s: %w", op, ErrClosed)
	}
	return fmt.Errorf("kv: bolt %s %s: %w", b.db.Path(), op, err)
}

// decodeStored decodes and validates a record read from the file. The bytes
// are copied by the decoder, so the record outlives the transaction.
func decodeStored(key string, data []byte) (Record, error) {
	var rec Record
	if err := wire.UnmarshalValue(data, &rec); err != nil {
		return Record{}, fmt.Errorf("decode key %s: %w", quoteKey(key), err)
	}
	if rec.Key != key {
		return Record{}, fmt.Errorf("%w: stored under %s but names %s", ErrInvalidRecord, quoteKey(key), quoteKey(rec.Key))
	}
	if err := rec.Validate(); err != nil {
		return Record{}, err
	}
	return rec.normalize(), nil
}
