package kv

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/p2p-go/p2p/peer"
)

// Limits on what the store holds. They bound the memory and the message sizes
// of every replica, so every node of a cluster must use the same values.
const (
	// MaxKeyLen is the largest key, in bytes.
	MaxKeyLen = 512
	// MaxValueLen is the largest value, in bytes (64 KiB).
	MaxValueLen = 64 << 10
	// DefaultMaxKeys is the default largest number of live keys.
	DefaultMaxKeys = 100_000
)

var (
	// ErrInvalidKey is returned for an empty key, a key that is not valid
	// UTF-8, or a key containing a NUL byte.
	ErrInvalidKey = errors.New("kv: invalid key")
	// ErrKeyTooLong is returned for a key longer than MaxKeyLen.
	ErrKeyTooLong = errors.New("kv: key too long")
	// ErrValueTooLarge is returned for a value larger than MaxValueLen.
	ErrValueTooLarge = errors.New("kv: value too large")
	// ErrTooManyKeys is returned when a write would create a key beyond
	// Config.MaxKeys.
	ErrTooManyKeys = errors.New("kv: too many keys")
	// ErrNotFound is returned when deleting a key the store does not hold.
	ErrNotFound = errors.New("kv: key not found")
	// ErrInvalidRecord is returned for a record from a peer or a backend
	// that breaks the store's rules (limits, zero writer, zero timestamp, a
	// tombstone carrying a value).
	ErrInvalidRecord = errors.New("kv: invalid record")
)

// Version identifies one write: its HLC timestamp and the node that made it.
// Versions are totally ordered (timestamp first, then writer ID), so every
// replica picks the same winner among concurrent writes to a key.
type Version struct {
	_      struct{} `cbor:",toarray"`
	Time   HLC
	Writer peer.ID
}

// Compare orders versions by timestamp, then by writer ID; it returns -1, 0
// or +1.
func (v Version) Compare(other Version) int {
	if c := v.Time.Compare(other.Time); c != 0 {
		return c
	}
	return v.Writer.Compare(other.Writer)
}

// String returns "timestamp@writer".
func (v Version) String() string { return v.Time.String() + "@" + v.Writer.Short() }

// Record is the state of one key: its value and the version of the write that
// set it. A deleted key is kept for a while as a tombstone (Deleted true, no
// value) so that the delete wins over older writes still travelling.
//
// PublicKey and Signature are the writer's: its ed25519 public key (whose
// SHA-256 is Version.Writer) and its signature over the key, the value, the
// version and the tombstone flag (see [Record.Verify]). Every node checks
// them before it applies a record from a peer, so no node can write in
// another's name.
type Record struct {
	_         struct{} `cbor:",toarray"`
	Key       string
	Value     []byte
	Version   Version
	Deleted   bool
	PublicKey []byte
	Signature []byte
}

// Supersedes reports whether r wins over other in the last-writer-wins merge:
// a later version wins; records with equal versions (which only a faulty
// writer can produce) are ordered by tombstone first, then value bytes, so
// that the merge stays deterministic whatever happens. Under
// [RevokedPrefix] the order of versions is reversed: the earliest
// revocation of a node wins, so that a later one cannot move its date.
func (r Record) Supersedes(other Record) bool {
	if c := compareVersions(r.Key, r.Version, other.Version); c != 0 {
		return c > 0
	}
	if r.Deleted != other.Deleted {
		return r.Deleted
	}
	return bytes.Compare(r.Value, other.Value) > 0
}

// ValidateKey checks a key against the store's rules: non-empty, at most
// MaxKeyLen bytes, valid UTF-8 and without NUL bytes.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: key %s is %d bytes, limit %d", ErrKeyTooLong, quoteKey(key), len(key), MaxKeyLen)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: key %s is not valid UTF-8", ErrInvalidKey, quoteKey(key))
	case strings.IndexByte(key, 0) >= 0:
		return fmt.Errorf("%w: key %s contains NUL", ErrInvalidKey, quoteKey(key))
	}
	return nil
}

// validateValue checks a value's size.
func validateValue(key string, value []byte) error {
	if len(value) > MaxValueLen {
		return fmt.Errorf("%w: key %s: value is %d bytes, limit %d", ErrValueTooLarge, quoteKey(key), len(value), MaxValueLen)
	}
	return nil
}

// Validate checks every field of a record received from a peer or read from a
// backend. Errors wrap ErrInvalidRecord and the specific limit error.
func (r Record) Validate() error {
	if err := ValidateKey(r.Key); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	if err := validateValue(r.Key, r.Value); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	switch {
	case r.Version.Writer.IsZero():
		return fmt.Errorf("%w: key %s: zero writer", ErrInvalidRecord, quoteKey(r.Key))
	case r.Version.Time.Wall <= 0:
		return fmt.Errorf("%w: key %s: timestamp %d is not positive", ErrInvalidRecord, quoteKey(r.Key), r.Version.Time.Wall)
	case r.Deleted && len(r.Value) > 0:
		return fmt.Errorf("%w: key %s: tombstone carries a value", ErrInvalidRecord, quoteKey(r.Key))
	case len(r.PublicKey) > ed25519.PublicKeySize || len(r.Signature) > ed25519.SignatureSize:
		return fmt.Errorf("%w: key %s: public key or signature too long", ErrInvalidRecord, quoteKey(r.Key))
	}
	return nil
}

// Normalize returns r with empty values, keys and signatures nil, so that
// equal records compare, hash and encode the same way whichever path (wire,
// backend, local write) they came by. Backends store records normalized.
func (r Record) Normalize() Record {
	if len(r.Value) == 0 {
		r.Value = nil
	}
	if len(r.PublicKey) == 0 {
		r.PublicKey = nil
	}
	if len(r.Signature) == 0 {
		r.Signature = nil
	}
	return r
}

// hash returns the record's digest, the unit the Merkle tree is built from
// and what the writer signs. It covers every field but the public key and
// the signature (which the writer ID and the digest determine), so replicas
// holding different records for a key have different digests.
func (r Record) hash() [32]byte {
	h := sha256.New()
	var scratch [binary.MaxVarintLen64 + 12]byte
	h.Write(binary.AppendUvarint(scratch[:0], uint64(len(r.Key))))
	h.Write([]byte(r.Key))
	buf := binary.BigEndian.AppendUint64(scratch[:0], uint64(r.Version.Time.Wall))
	buf = binary.BigEndian.AppendUint32(buf, r.Version.Time.Logical)
	h.Write(buf)
	h.Write(r.Version.Writer[:])
	deleted := byte(0)
	if r.Deleted {
		deleted = 1
	}
	h.Write([]byte{deleted})
	h.Write(binary.AppendUvarint(scratch[:0], uint64(len(r.Value))))
	h.Write(r.Value)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// encodedSizeEstimate is an upper bound of the record's CBOR size, used to cut
// anti-entropy messages before encoding them.
func (r Record) encodedSizeEstimate() int {
	// Array headers, string and byte-string headers, HLC (9 + 5 bytes), the
	// writer ID (2 + 32 bytes), the tombstone flag, the public key (2 + 32)
	// and the signature (2 + 64).
	return len(r.Key) + len(r.Value) + 164
}

// quoteKey quotes a key for an error message, shortened when long.
func quoteKey(key string) string {
	const maxShown = 64
	if len(key) > maxShown {
		return fmt.Sprintf("%q…", key[:maxShown])
	}
	return fmt.Sprintf("%q", key)
}
