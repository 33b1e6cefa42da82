package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/p2p-go/p2p/kv"
)

// SyncFileMode is the mode of the files written by --sync: readable by
// their owner only, as configuration often holds credentials.
const SyncFileMode = 0o600

// SyncSpec keeps the file Path equal to the value of Key: the file is
// written (atomically: a temporary file in the same directory, fsync, then
// rename) whenever the key changes and when the agent starts, and removed
// when the key is deleted.
type SyncSpec struct {
	Key  string
	Path string
}

// ParseSync parses KEY=PATH.
func ParseSync(spec string) (SyncSpec, error) {
	key, path, ok := strings.Cut(spec, "=")
	if !ok || path == "" {
		return SyncSpec{}, fmt.Errorf("agent: sync %q: want KEY=PATH", spec)
	}
	if err := kv.ValidateKey(key); err != nil {
		return SyncSpec{}, fmt.Errorf("agent: sync %q: %w", spec, err)
	}
	return SyncSpec{Key: key, Path: filepath.Clean(path)}, nil
}

func parseSyncs(specs []string) ([]SyncSpec, error) {
	out := make([]SyncSpec, 0, len(specs))
	paths := map[string]bool{}
	for _, s := range specs {
		spec, err := ParseSync(s)
		if err != nil {
			return nil, err
		}
		if paths[spec.Path] {
			return nil, fmt.Errorf("agent: sync %q: file %s is already synced with another key", s, spec.Path)
		}
		paths[spec.Path] = true
		out = append(out, spec)
	}
	return out, nil
}

// syncFile brings the file in line with rec (the key's current record).
// It reports whether it changed the file.
func syncFile(path string, rec Record) (bool, error) {
	if rec.Deleted {
		err := os.Remove(path)
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("sync key %q: remove %s: %w", rec.Key, path, err)
		}
		return true, nil
	}
	if current, err := os.ReadFile(path); err == nil && bytes.Equal(current, rec.Value) {
		return false, nil
	}
	if err := writeFileAtomic(path, rec.Value, SyncFileMode); err != nil {
		return false, fmt.Errorf("sync key %q: %w", rec.Key, err)
	}
	return true, nil
}

// writeFileAtomic writes data to path so that readers see either the old
// content or the new one, never a mix.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	clean := func() { _ = os.Remove(tmp.Name()) }
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		clean()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		clean()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		clean()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		clean()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		clean()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
