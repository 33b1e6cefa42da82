package kademlia

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/p2p-go/p2p/peer"
)

// Errors returned in results and wrapped with the key or peer concerned.
var (
	// ErrMalformed is a message or record whose fields are out of range.
	ErrMalformed = errors.New("kademlia: malformed")
	// ErrForged is a mutable record whose signature does not verify with
	// its writer's key.
	ErrForged = errors.New("kademlia: forged record: signature does not verify")
	// ErrStale is a mutable record whose sequence number is not above the
	// stored one (or equal with a different value).
	ErrStale = errors.New("kademlia: stale record: sequence number not above the stored one")
	// ErrHashMismatch is an immutable record whose key is not the SHA-256
	// of its value.
	ErrHashMismatch = errors.New("kademlia: immutable record's key is not the SHA-256 of its value")
	// ErrKeyMismatch is a mutable record whose key is not
	// SHA-256(writer || name), or a record returned for another key.
	ErrKeyMismatch = errors.New("kademlia: record key does not match")
	// ErrTooLarge is a value, name or payload over its configured limit.
	ErrTooLarge = errors.New("kademlia: too large")
	// ErrStoreFull is a STORE refused because a storage quota is reached.
	ErrStoreFull = errors.New("kademlia: store full")
	// ErrRateLimited is a STORE refused by the sender's rate limit.
	ErrRateLimited = errors.New("kademlia: STORE rate limit exceeded")
	// ErrNotFound is a Get whose lookup ended without finding the record.
	ErrNotFound = errors.New("kademlia: record not found")
	// ErrNoContacts is a request made while the routing table is empty, or
	// a Bootstrap none of whose contacts answered.
	ErrNoContacts = errors.New("kademlia: no contacts")
	// ErrNoSigner is a mutable Put on a core configured without a Signer.
	ErrNoSigner = errors.New("kademlia: no signer configured")
	// ErrNotStored is a Put that no node accepted.
	ErrNotStored = errors.New("kademlia: no node stored the record")
)

// signatureDomain separates record signatures from any other use of the key.
const signatureDomain = "p2p/kademlia/record/v1\x00"

// Record is a value stored in the DHT. A mutable record belongs to the
// holder of Writer's private key: its Key is SHA-256(Writer || Name), only
// the writer can sign a new version, and a higher Seq replaces a lower one. An
// immutable record has no Writer, Name, Seq or Sig: its Key is the SHA-256 of
// its Value.
type Record struct {
	// Key is where the record lives in the ID space.
	Key peer.ID
	// Name is the writer's name for a mutable record (empty otherwise).
	Name []byte
	// Value is the record's content.
	Value []byte
	// Writer is the ed25519 public key of a mutable record's owner; nil for
	// an immutable record.
	Writer ed25519.PublicKey
	// Seq orders the versions of a mutable record.
	Seq uint64
	// Sig is Writer's signature over the key, Seq and Value.
	Sig []byte
	// Expires is when this copy expires. It is local to each holder (the
	// wire carries the remaining lifetime) and is not signed.
	Expires time.Time
}

// WireRecord is a Record as it travels: TTL, the remaining lifetime in
// seconds, replaces the absolute expiry time, since clocks differ.
type WireRecord struct {
	_      struct{} `cbor:",toarray"`
	Key    peer.ID
	Name   []byte
	Value  []byte
	Writer []byte
	Seq    uint64
	Sig    []byte
	TTL    uint32
}

// MutableKey returns the key of writer's record called name:
// SHA-256(writer || name).
func MutableKey(writer ed25519.PublicKey, name []byte) peer.ID {
	h := sha256.New()
	h.Write(writer)
	h.Write(name)
	var key peer.ID
	h.Sum(key[:0])
	return key
}

// ImmutableKey returns the key of an immutable value: its SHA-256.
func ImmutableKey(value []byte) peer.ID { return peer.ID(sha256.Sum256(value)) }

// signedBytes is what a mutable record's signature covers.
func signedBytes(key peer.ID, seq uint64, value []byte) []byte {
	msg := make([]byte, 0, len(signatureDomain)+peer.IDLen+8+len(value))
	msg = append(msg, signatureDomain...)
	msg = append(msg, key[:]...)
	msg = binary.BigEndian.AppendUint64(msg, seq)
	return append(msg, value...)
}

// SigningBytes returns the bytes a mutable record's signature covers: a
// domain separator, the key, the sequence number and the value. It lets a
// writer whose private key is held elsewhere (a hardware token, another
// process) sign records: set Sig to the ed25519 signature of these bytes.
func (r *Record) SigningBytes() []byte { return signedBytes(r.Key, r.Seq, r.Value) }

// NewMutableRecord returns the record called name with value, version seq,
// signed by signer.
func NewMutableRecord(signer Signer, name, value []byte, seq uint64) Record {
	writer := signer.Public()
	key := MutableKey(writer, name)
	return Record{
		Key:    key,
		Name:   bytes.Clone(name),
		Value:  bytes.Clone(value),
		Writer: bytes.Clone(writer),
		Seq:    seq,
		Sig:    signer.Sign(signedBytes(key, seq, value)),
	}
}

// NewImmutableRecord returns the content-addressed record of value.
func NewImmutableRecord(value []byte) Record {
	return Record{Key: ImmutableKey(value), Value: bytes.Clone(value)}
}

// Mutable reports whether r is a mutable (signed) record.
func (r *Record) Mutable() bool { return len(r.Writer) != 0 }

// Verify checks that r is well formed and authentic: a mutable record's key
// is SHA-256(Writer || Name) and its signature verifies, an immutable
// record's key is the SHA-256 of its value. Size limits are the store's
// business and not checked here.
func (r *Record) Verify() error {
	if !r.Mutable() {
		if len(r.Name) != 0 || len(r.Sig) != 0 || r.Seq != 0 {
			return fmt.Errorf("%w: immutable record %s has a name, signature or sequence number", ErrMalformed, r.Key.Short())
		}
		if ImmutableKey(r.Value) != r.Key {
			return fmt.Errorf("%w: key %s", ErrHashMismatch, r.Key.Short())
		}
		return nil
	}
	if len(r.Writer) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: record %s: writer key is %d bytes", ErrMalformed, r.Key.Short(), len(r.Writer))
	}
	if len(r.Sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: record %s: signature is %d bytes", ErrForged, r.Key.Short(), len(r.Sig))
	}
	if MutableKey(r.Writer, r.Name) != r.Key {
		return fmt.Errorf("%w: %s is not SHA-256(writer %s || name)", ErrKeyMismatch, r.Key.Short(), peer.IDFromPublicKey(r.Writer).Short())
	}
	if !peer.Verify(r.Writer, signedBytes(r.Key, r.Seq, r.Value), r.Sig) {
		return fmt.Errorf("%w: record %s seq %d by %s", ErrForged, r.Key.Short(), r.Seq, peer.IDFromPublicKey(r.Writer).Short())
	}
	return nil
}

// checkSize refuses a record over the size limits.
func (r *Record) checkSize(maxValue, maxName int) error {
	if len(r.Value) > maxValue {
		return fmt.Errorf("%w: record %s value is %d bytes, limit %d", ErrTooLarge, r.Key.Short(), len(r.Value), maxValue)
	}
	if len(r.Name) > maxName {
		return fmt.Errorf("%w: record %s name is %d bytes, limit %d", ErrTooLarge, r.Key.Short(), len(r.Name), maxName)
	}
	return nil
}

// sameVersion reports whether a and b are the same version of a record.
func sameVersion(a, b *Record) bool {
	return a.Seq == b.Seq && bytes.Equal(a.Value, b.Value) && bytes.Equal(a.Sig, b.Sig)
}

// toWire returns the wire form of r with ttl left to live.
func (r Record) toWire(ttl time.Duration) WireRecord {
	secs := int64(ttl / time.Second)
	if secs < 1 {
		secs = 1
	}
	if secs > 1<<32-1 {
		secs = 1<<32 - 1
	}
	return WireRecord{Key: r.Key, Name: r.Name, Value: r.Value, Writer: r.Writer, Seq: r.Seq, Sig: r.Sig, TTL: uint32(secs)}
}

// fromWire returns the record w carries, expiring at now plus its TTL capped
// by maxTTL. It does not verify it.
func fromWire(w *WireRecord, now time.Time, maxTTL time.Duration) Record {
	ttl := time.Duration(w.TTL) * time.Second
	if ttl > maxTTL {
		ttl = maxTTL
	}
	var writer ed25519.PublicKey
	if len(w.Writer) > 0 {
		writer = ed25519.PublicKey(w.Writer)
	}
	return Record{Key: w.Key, Name: w.Name, Value: w.Value, Writer: writer, Seq: w.Seq, Sig: w.Sig, Expires: now.Add(ttl)}
}
