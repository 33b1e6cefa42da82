package tcp

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
)

// MaxKeys bounds the secrets a keyring holds: a responder may try each of
// them on every inbound handshake, so the bound keeps that cheap. A rotation
// needs two.
const MaxKeys = 16

// Errors of keyring operations.
var (
	// ErrKeyNotInstalled is returned by Keyring.Use for a key that is not
	// installed.
	ErrKeyNotInstalled = errors.New("tcp: key is not installed")
	// ErrRemovePrimary is returned by Keyring.Remove for the primary key.
	ErrRemovePrimary = errors.New("tcp: the primary key cannot be removed (use another key first)")
	// ErrOpenNetwork is returned by the operations of an empty keyring: a
	// node started without a cluster secret admits any peer and has no key
	// to rotate.
	ErrOpenNetwork = errors.New("tcp: open network (no cluster secret): nothing to rotate")
	// ErrKeyringFull is returned by Keyring.Install beyond MaxKeys keys.
	ErrKeyringFull = errors.New("tcp: keyring full")
)

// Keyring holds the cluster secrets a transport accepts: several may be
// installed at once so that a cluster rotates its secret without downtime.
// The primary key is used for outgoing handshakes; incoming handshakes are
// accepted with any installed key. A rotation installs the new key on every
// node, makes it primary on every node, then removes the old one. An empty
// keyring is an open network. Its methods are safe for concurrent use; a
// change applies to the handshakes that start afterwards.
type Keyring struct {
	mu   sync.RWMutex
	keys [][]byte // keys[0] is the primary; each SecretLen bytes
}

// NewKeyring returns a keyring whose primary is primary (nil: an open
// network, and then others must be empty) and that accepts others too.
func NewKeyring(primary []byte, others ...[]byte) (*Keyring, error) {
	k := &Keyring{}
	if primary == nil {
		if len(others) > 0 {
			return nil, errors.New("tcp: a keyring with keys needs a primary key")
		}
		return k, nil
	}
	for _, key := range append([][]byte{primary}, others...) {
		if err := checkKey(key); err != nil {
			return nil, err
		}
		if k.index(key) < 0 {
			if len(k.keys) == MaxKeys {
				return nil, fmt.Errorf("%w: %d keys at most", ErrKeyringFull, MaxKeys)
			}
			k.keys = append(k.keys, bytes.Clone(key))
		}
	}
	return k, nil
}

func checkKey(key []byte) error {
	if len(key) != SecretLen {
		return fmt.Errorf("tcp: key is %d bytes, want %d", len(key), SecretLen)
	}
	return nil
}

// index returns the position of key, or -1; the caller holds mu.
func (k *Keyring) index(key []byte) int {
	for i, have := range k.keys {
		if bytes.Equal(have, key) {
			return i
		}
	}
	return -1
}

// Primary returns a copy of the primary key, or nil for an open network
// (a nil *Keyring is one).
func (k *Keyring) Primary() []byte {
	if k == nil {
		return nil
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	if len(k.keys) == 0 {
		return nil
	}
	return bytes.Clone(k.keys[0])
}

// Keys returns copies of the installed keys, the primary first.
func (k *Keyring) Keys() [][]byte {
	if k == nil {
		return nil
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([][]byte, len(k.keys))
	for i, key := range k.keys {
		out[i] = bytes.Clone(key)
	}
	return out
}

// Install adds key to the keys accepted from peers; installing a key twice
// changes nothing.
func (k *Keyring) Install(key []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case len(k.keys) == 0:
		return ErrOpenNetwork
	case k.index(key) >= 0:
		return nil
	case len(k.keys) == MaxKeys:
		return fmt.Errorf("%w: %d keys at most; remove one first", ErrKeyringFull, MaxKeys)
	}
	k.keys = append(k.keys, bytes.Clone(key))
	return nil
}

// Use makes an installed key the primary one, used for outgoing handshakes.
func (k *Keyring) Use(key []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.keys) == 0 {
		return ErrOpenNetwork
	}
	i := k.index(key)
	if i < 0 {
		return ErrKeyNotInstalled
	}
	// Keep the others in order behind the new primary.
	primary := k.keys[i]
	copy(k.keys[1:i+1], k.keys[:i])
	k.keys[0] = primary
	return nil
}

// Remove stops accepting key; removing a key that is not installed changes
// nothing. The primary key cannot be removed.
func (k *Keyring) Remove(key []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.keys) == 0 {
		return ErrOpenNetwork
	}
	i := k.index(key)
	switch {
	case i < 0:
		return nil
	case i == 0:
		return ErrRemovePrimary
	}
	k.keys = append(k.keys[:i], k.keys[i+1:]...)
	return nil
}
