package agent

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
)

// LooseMode reports whether the file at path may be read by its group or by
// others (mode bits 0o077), and its mode. A missing file is not loose. On
// Windows, where mode bits say nothing of who may read, it is never loose.
func LooseMode(path string) (os.FileMode, bool, error) {
	if runtime.GOOS == "windows" {
		return 0, false, nil
	}
	info, err := os.Stat(path)
	if err != nil {
		if os.IsNotExist(err) {
			return 0, false, nil
		}
		return 0, false, err
	}
	mode := info.Mode().Perm()
	return mode, mode&0o077 != 0, nil
}

// WarnLooseMode logs a warning when the file at path, which holds a secret
// (what names it: "cluster secret", "node key"...), may be read by its group
// or others. The agent warns rather than refuses, so that a file made by
// `p2p keygen > secret` before `keygen -o` existed still works; the warning
// says how to fix it. It reports whether it warned.
func WarnLooseMode(logger *slog.Logger, path, what string) bool {
	mode, loose, err := LooseMode(path)
	if err != nil || !loose {
		return false
	}
	logger.Warn(fmt.Sprintf("%s file is readable by other users: run chmod 600 on it", what), "path", path, "mode", fmt.Sprintf("%#o", mode))
	return true
}

// ReadSecretFile reads a secret (a cluster secret, an API token) from the
// file at path, without surrounding white space, and warns through logger
// when the file is readable by group or others.
func ReadSecretFile(logger *slog.Logger, path, what string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s file: %w", what, err)
	}
	WarnLooseMode(logger, path, what)
	text := strings.TrimSpace(string(data))
	if text == "" {
		return "", fmt.Errorf("%s file %s is empty", what, path)
	}
	return text, nil
}
