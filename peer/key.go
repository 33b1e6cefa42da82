package peer

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// KeyFile is the name of the file, inside a node's data directory, that holds
// its ed25519 private key seed.
const KeyFile = "node.key"

// Key is a node's ed25519 key pair.
type Key struct {
	private ed25519.PrivateKey
}

// GenerateKey creates a new key pair from the given randomness source
// (crypto/rand when nil).
func GenerateKey(random io.Reader) (*Key, error) {
	if random == nil {
		random = rand.Reader
	}
	_, private, err := ed25519.GenerateKey(random)
	if err != nil {
		return nil, fmt.Errorf("peer: generate key: %w", err)
	}
	return &Key{private: private}, nil
}

// KeyFromSeed returns the key pair for a 32-byte ed25519 seed.
func KeyFromSeed(seed []byte) (*Key, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("peer: key seed is %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	return &Key{private: ed25519.NewKeyFromSeed(seed)}, nil
}

// LoadOrCreateKey reads the key from dir/node.key, or generates one and writes
// it there with mode 0600 when the file does not exist. The directory is
// created (mode 0700) if needed.
func LoadOrCreateKey(dir string) (*Key, error) {
	path := filepath.Join(dir, KeyFile)
	seed, err := os.ReadFile(path)
	if err == nil {
		key, err := KeyFromSeed(seed)
		if err != nil {
			return nil, fmt.Errorf("peer: read %s: %w", path, err)
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("peer: read key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("peer: create data directory: %w", err)
	}
	key, err := GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, key.private.Seed(), 0o600); err != nil {
		return nil, fmt.Errorf("peer: write key: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("peer: write key: %w", err)
	}
	return key, nil
}

// ID returns the node ID of the key's public half.
func (k *Key) ID() ID { return IDFromPublicKey(k.Public()) }

// Public returns the ed25519 public key.
func (k *Key) Public() ed25519.PublicKey { return k.private.Public().(ed25519.PublicKey) }

// Sign signs msg with the private key.
func (k *Key) Sign(msg []byte) []byte { return ed25519.Sign(k.private, msg) }

// Verify reports whether sig is pub's valid signature of msg. It returns false,
// never panics, for a public key of the wrong length.
func Verify(pub ed25519.PublicKey, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(pub, msg, sig)
}
