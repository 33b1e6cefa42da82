package kv

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The store's core depends on no runtime: not the node runtime, not the
// transport, not bbolt (package boltstore), whatever the path by which they
// could come in. The whole dependency graph is checked, as `go list -deps`
// prints it.
func TestCoreDependsOnNoRuntime(t *testing.T) {
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		if goTool, err = exec.LookPath("go"); err != nil {
			t.Skip("no go command to list the dependencies with")
		}
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	forbidden := []string{
		"github.com/p2p-go/p2p/node",
		"github.com/p2p-go/p2p/transport",
		"github.com/p2p-go/p2p/kv/boltstore",
		"github.com/p2p-go/p2p/kv/watch",
		"go.etcd.io/bbolt",
		"net",
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps printed only %q", deps)
	}
	for _, dep := range deps {
		for _, bad := range forbidden {
			if dep == bad || strings.HasPrefix(dep, bad+"/") {
				t.Errorf("package kv depends on %s", dep)
			}
		}
	}
}

// The store is a core: no file of the package may read the clock, touch the
// file system or use the network.
func TestCoreReadsNoClockAndOpensNoSocket(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if file.Doc == nil && name == "doc.go" {
			t.Errorf("doc.go has no package comment")
		}
		for _, imp := range file.Imports {
			path := strings.Trim(imp.Path.Value, `"`)
			if path == "net" || strings.HasPrefix(path, "net/") || path == "os" || path == "os/exec" {
				t.Errorf("%s imports %s", name, path)
			}
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "time" && (sel.Sel.Name == "Now" || sel.Sel.Name == "Since" || sel.Sel.Name == "Until") {
					t.Errorf("%s: time.%s", fset.Position(sel.Pos()), sel.Sel.Name)
				}
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "rand" && sel.Sel.Name != "New" && sel.Sel.Name != "NewPCG" && sel.Sel.Name != "Rand" {
					t.Errorf("%s: global rand.%s", fset.Position(sel.Pos()), sel.Sel.Name)
				}
			}
			return true
		})
	}
	if _, err := os.Stat("doc.go"); err != nil {
		t.Error("no doc.go")
	}
}
