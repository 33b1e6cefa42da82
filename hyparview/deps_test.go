package hyparview

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestCoreHasNoIOOrClock keeps the core a pure state machine: no file of
// the package (tests aside) imports net or os, or reads the clock.
func TestCoreHasNoIOOrClock(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	forbidden := map[string]bool{"net": true, "os": true, "net/http": true, "syscall": true, "math/rand": true}
	files := token.NewFileSet()
	for _, entry := range entries {
		name := entry.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		source, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		file, err := parser.ParseFile(files, name, source, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if file.Doc == nil && name == "doc.go" {
			t.Errorf("doc.go has no package comment")
		}
		for _, spec := range file.Imports {
			path, _ := strconv.Unquote(spec.Path.Value)
			if forbidden[path] {
				t.Errorf("%s imports %s", name, path)
			}
		}
		for _, call := range []string{"time.Now(", "time.Since(", "time.Sleep(", "time.After(", "go func"} {
			if strings.Contains(string(source), call) {
				t.Errorf("%s uses %s", name, call)
			}
		}
	}
}
