package kv

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/p2p-go/p2p/peer"
)

// ErrBadSignature is returned for a record whose signature is missing,
// whose public key is not its writer's, or whose signature does not verify:
// a record that claims a writer who did not write it.
var ErrBadSignature = errors.New("kv: bad record signature")

// recordSignatureDomain starts every message a record signature covers, so
// that no other message signed with a node's key (a handshake, a member
// record) can pass for a record's signature, nor the reverse.
const recordSignatureDomain = "p2p/kv/record/v1\x00"

// signedMessage returns what the writer signs: the domain, then the
// record's digest, which covers the key, the value, the version (timestamp
// and writer ID) and the tombstone flag.
func (r Record) signedMessage() []byte {
	h := r.hash()
	return append([]byte(recordSignatureDomain), h[:]...)
}

// Sign returns r with its PublicKey and Signature set by key, which must be
// the key of r's writer (Version.Writer == key.ID()).
func (r Record) Sign(key *peer.Key) Record {
	r = r.Normalize()
	r.PublicKey = bytes.Clone(key.Public())
	r.Signature = key.Sign(r.signedMessage())
	return r
}

// Verify checks that r was signed by its writer: PublicKey hashes to
// Version.Writer and Signature is its valid ed25519 signature of the
// record. The error wraps ErrBadSignature. It costs one ed25519
// verification (about 50 µs; see BENCHMARKS.md).
func (r Record) Verify() error {
	if len(r.PublicKey) != ed25519.PublicKeySize || len(r.Signature) != ed25519.SignatureSize {
		return fmt.Errorf("%w: key %s: unsigned record", ErrBadSignature, quoteKey(r.Key))
	}
	if peer.IDFromPublicKey(r.PublicKey) != r.Version.Writer {
		return fmt.Errorf("%w: key %s: public key is not writer %s's", ErrBadSignature, quoteKey(r.Key), r.Version.Writer.Short())
	}
	if !peer.Verify(r.PublicKey, r.signedMessage(), r.Signature) {
		return fmt.Errorf("%w: key %s: signature of writer %s does not verify", ErrBadSignature, quoteKey(r.Key), r.Version.Writer.Short())
	}
	return nil
}
