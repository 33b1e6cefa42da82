package peer

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
)

// IDLen is the length of a node ID in bytes.
const IDLen = 32

// ID identifies a node: the SHA-256 hash of its ed25519 public key.
type ID [IDLen]byte

// encoding is the printable form of IDs: lowercase base32 without padding.
var encoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ErrBadID is returned by ParseID for text that is not a node ID.
var ErrBadID = errors.New("peer: malformed node ID")

// IDFromPublicKey derives the node ID of an ed25519 public key.
func IDFromPublicKey(pub ed25519.PublicKey) ID {
	return ID(sha256.Sum256(pub))
}

// String returns the full printable form of the ID (52 characters).
func (id ID) String() string { return encoding.EncodeToString(id[:]) }

// Short returns the first 10 characters of the printable form, enough to tell
// nodes apart in logs and tables.
func (id ID) Short() string { return id.String()[:10] }

// IsZero reports whether the ID is the zero value (no node).
func (id ID) IsZero() bool { return id == ID{} }

// Compare orders IDs as big-endian numbers; it returns -1, 0 or +1.
func (id ID) Compare(other ID) int { return bytes.Compare(id[:], other[:]) }

// MarshalText implements encoding.TextMarshaler so IDs appear in JSON as text.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *ID) UnmarshalText(text []byte) error {
	parsed, err := ParseID(string(text))
	if err != nil {
		return err
	}
	*id = parsed
	return nil
}

// ParseID parses the printable form produced by [ID.String].
func ParseID(s string) (ID, error) {
	var id ID
	raw, err := encoding.DecodeString(strings.ToLower(strings.TrimSpace(s)))
	if err != nil || len(raw) != IDLen {
		return id, fmt.Errorf("%w: %q", ErrBadID, s)
	}
	copy(id[:], raw)
	return id, nil
}

// Info is what overlays know of a peer: its ID and the address it listens on.
type Info struct {
	_    struct{} `cbor:",toarray"`
	ID   ID
	Addr string
}

// String returns "shortid@addr".
func (i Info) String() string { return i.ID.Short() + "@" + i.Addr }
