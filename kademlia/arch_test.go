package kademlia

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// The package is a pure core (issue 12): nothing it links, directly or
// through another package, runs a network, a runtime or a database. Its
// runtime is the root package's DHT, on package node.
func TestPackageDependsOnNoRuntimeTransportOrStore(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the dependencies")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range bytes.Fields(out) {
		path := string(dep)
		switch {
		case path == "github.com/p2p-go/p2p/node",
			path == "github.com/p2p-go/p2p/transport" || strings.HasPrefix(path, "github.com/p2p-go/p2p/transport/"),
			strings.HasPrefix(path, "go.etcd.io/bbolt"),
			path == "net" || path == "os/exec":
			t.Errorf("package kademlia depends on %s", path)
		}
	}
}

// The core files stay free of I/O and clocks.
func TestCoreImportsNoIOAndReadsNoClock(t *testing.T) {
	forbidden := map[string]bool{"net": true, "os": true, "io/fs": true, "math/rand": true, "github.com/p2p-go/p2p/node": true, "github.com/p2p-go/p2p/transport": true}
	fset := token.NewFileSet()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range file.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if forbidden[path] {
				t.Errorf("%s imports %s", name, path)
			}
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "time" && (sel.Sel.Name == "Now" || sel.Sel.Name == "Since" || sel.Sel.Name == "Until") {
					t.Errorf("%s: time.%s in a core file", fset.Position(sel.Pos()), sel.Sel.Name)
				}
			}
			return true
		})
	}
}

// Every exported name has a doc comment that starts with the name.
func TestExportedNamesAreDocumented(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, doc *ast.CommentGroup, pos token.Pos, grouped bool) {
		if !ast.IsExported(name) {
			return
		}
		if doc == nil {
			if !grouped {
				t.Errorf("%s: %s has no doc comment", fset.Position(pos), name)
			}
			return
		}
		if text := doc.Text(); !strings.HasPrefix(text, name+" ") && !strings.HasPrefix(text, "A "+name) && !strings.HasPrefix(text, "An "+name) && !grouped {
			t.Errorf("%s: doc of %s starts %q", fset.Position(pos), name, strings.SplitN(text, "\n", 2)[0])
		}
	}
	for _, pkg := range pkgs {
		if pkg.Name != "kademlia" {
			continue
		}
		for _, file := range pkg.Files {
			for _, decl := range file.Decls {
				switch d := decl.(type) {
				case *ast.FuncDecl:
					check(d.Name.Name, d.Doc, d.Pos(), false)
				case *ast.GenDecl:
					for _, spec := range d.Specs {
						switch s := spec.(type) {
						case *ast.TypeSpec:
							doc := s.Doc
							if doc == nil {
								doc = d.Doc
							}
							check(s.Name.Name, doc, s.Pos(), false)
						case *ast.ValueSpec:
							// Constants and variables in a documented
							// group may share the group's comment.
							grouped := d.Lparen.IsValid() && d.Doc != nil
							for _, n := range s.Names {
								doc := s.Doc
								if doc == nil && !d.Lparen.IsValid() {
									doc = d.Doc
								}
								if doc == nil {
									doc = s.Comment
								}
								check(n.Name, doc, n.Pos(), grouped)
							}
						}
					}
				}
			}
		}
	}
}
