package testutil

import (
	"fmt"
	"os/exec"
	"path/filepath"
)

// BuildCommand builds the Go command pkg (an import path, or "." for the
// calling test's own package) into dir/name and returns the binary's path.
// Tests that run the real binaries as separate processes build them once,
// in TestMain or at the top of the test, with it. A failed build's error
// carries the compiler's output.
func BuildCommand(dir, name, pkg string) (string, error) {
	binary := filepath.Join(dir, name)
	if out, err := exec.Command("go", "build", "-o", binary, pkg).CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %w\n%s", pkg, err, out)
	}
	return binary, nil
}
