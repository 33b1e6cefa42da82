package p2p

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/p2p-go/p2p/transport/tcp"
)

// KeyringFile is the file, in a node's data directory, that keeps its
// keyring (mode 0600) once a keyring operation changed it, so that a restart
// keeps the rotated secrets.
const KeyringFile = "keyring.json"

// ErrNoKeyring is returned by the keyring operations of a node whose
// transport has no keyring (one installed through Config.Transport other
// than TCP).
var ErrNoKeyring = errors.New("p2p: this node's transport has no keyring")

// keyringFile is the content of KeyringFile: printable secrets, the primary
// first.
type keyringFile struct {
	Keys []string `json:"keys"`
}

// OpenKeyring returns the keyring of the node whose data directory is
// dataDir: the one kept in dataDir/KeyringFile when a keyring operation has
// written it, else one holding secret alone (nil secret: an open network).
// A kept keyring wins over secret, which a rotation may have removed; that is
// logged. A keyring file readable by group or others is used with a warning.
func OpenKeyring(dataDir string, secret []byte, logger *slog.Logger) (*tcp.Keyring, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	path := filepath.Join(dataDir, KeyringFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return tcp.NewKeyring(secret)
	}
	if err != nil {
		return nil, fmt.Errorf("p2p: keyring: %w", err)
	}
	keys, err := decodeKeyringFile(data)
	if err != nil {
		return nil, fmt.Errorf("p2p: keyring %s: %w", path, err)
	}
	if info, err := os.Stat(path); err == nil && info.Mode().Perm()&0o077 != 0 {
		logger.Warn("keyring file is readable by other users: run chmod 600 on it", "path", path, "mode", fmt.Sprintf("%#o", info.Mode().Perm()))
	}
	ring, err := tcp.NewKeyring(keys[0], keys[1:]...)
	if err != nil {
		return nil, fmt.Errorf("p2p: keyring %s: %w", path, err)
	}
	if secret != nil && !containsKey(keys, secret) {
		logger.Warn("the configured cluster secret is not in the keyring kept in the data directory (a rotation removed it?): using the keyring", "path", path, "keys", len(keys))
	} else if len(keys) > 1 || secret != nil && !bytes.Equal(keys[0], secret) {
		logger.Info("using the keyring kept in the data directory", "path", path, "keys", len(keys))
	}
	return ring, nil
}

func decodeKeyringFile(data []byte) ([][]byte, error) {
	var file keyringFile
	if err := json.Unmarshal(data, &file); err != nil {
		return nil, err
	}
	if len(file.Keys) == 0 || len(file.Keys) > tcp.MaxKeys {
		return nil, fmt.Errorf("%d keys, want 1 to %d", len(file.Keys), tcp.MaxKeys)
	}
	keys := make([][]byte, len(file.Keys))
	for i, text := range file.Keys {
		key, err := ParseSecret(text)
		if err != nil || key == nil {
			return nil, fmt.Errorf("key %d: %v", i, err)
		}
		keys[i] = key
	}
	return keys, nil
}

// saveKeyring writes ring to dataDir/KeyringFile, mode 0600, atomically.
func saveKeyring(dataDir string, ring *tcp.Keyring) error {
	keys := ring.Keys()
	file := keyringFile{Keys: make([]string, len(keys))}
	for i, key := range keys {
		file.Keys[i] = FormatSecret(key)
	}
	data, err := json.MarshalIndent(file, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("p2p: save keyring: %w", err)
	}
	tmp, err := os.CreateTemp(dataDir, KeyringFile+".*")
	if err != nil {
		return fmt.Errorf("p2p: save keyring: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	// CreateTemp makes the file 0600.
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("p2p: save keyring: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("p2p: save keyring: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("p2p: save keyring: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dataDir, KeyringFile)); err != nil {
		return fmt.Errorf("p2p: save keyring: %w", err)
	}
	return nil
}

// FormatSecret returns the printable form of a cluster secret, as
// GenerateSecret prints it and ParseSecret reads it.
func FormatSecret(secret []byte) string { return base64.StdEncoding.EncodeToString(secret) }

func containsKey(keys [][]byte, key []byte) bool {
	for _, k := range keys {
		if bytes.Equal(k, key) {
			return true
		}
	}
	return false
}
