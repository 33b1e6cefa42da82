package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFile is the file in the data directory that an agent holds locked
// (flock) while it runs, with its process ID inside, so that a second agent
// on the same directory is told which process has it. The kernel releases
// the lock when the process ends, however it ends.
const LockFile = "agent.lock"

// ErrDataDirInUse is wrapped by the error of New when another process holds
// the data directory.
var ErrDataDirInUse = errors.New("data directory in use")

// lockDataDir creates dir if needed and locks its LockFile, writing this
// process's ID in it.
func lockDataDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("agent: data directory: %w", err)
	}
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("agent: data directory lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("agent: %w: %s is in use by %s (stop it, or give this agent another --data)", ErrDataDirInUse, dir, lockHolder(path))
		}
		return nil, fmt.Errorf("agent: lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// lockHolder names the process recorded in a lock file: "PID N", or
// "another process" when the file does not say.
func lockHolder(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "another process"
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return "another process"
	}
	return "PID " + strconv.Itoa(pid)
}
