package plumtree

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The core is a pure state machine: its non-test files import no network,
// file or process packages, read no clock and start no goroutine, and every
// exported name is documented.
func TestCoreHasNoIOClockOrGoroutines(t *testing.T) {
	forbiddenImports := map[string]bool{"net": true, "os": true, "os/exec": true, "sync": true, "math/rand": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if lines := strings.Count(string(src), "\n"); lines > 600 {
			t.Errorf("%s has %d lines, the house limit is ~600", name, lines)
		}
		file, err := parser.ParseFile(fset, name, src, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range file.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if forbiddenImports[path] || strings.HasPrefix(path, "net/") {
				t.Errorf("%s imports %s", name, path)
			}
		}
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				if x, ok := n.X.(*ast.Ident); ok && x.Name == "time" && (n.Sel.Name == "Now" || n.Sel.Name == "Since" || n.Sel.Name == "Until" || n.Sel.Name == "Sleep") {
					t.Errorf("%s: uses time.%s", fset.Position(n.Pos()), n.Sel.Name)
				}
			case *ast.GoStmt:
				t.Errorf("%s: starts a goroutine", fset.Position(n.Pos()))
			}
			return true
		})
		for _, decl := range file.Decls {
			checkDocumented(t, fset, decl)
		}
	}
	if checked == 0 {
		t.Fatal("no source file checked")
	}
}

func checkDocumented(t *testing.T, fset *token.FileSet, decl ast.Decl) {
	t.Helper()
	switch d := decl.(type) {
	case *ast.FuncDecl:
		if d.Name.IsExported() && (d.Recv == nil || receiverExported(d.Recv)) && !documents(d.Doc, d.Name.Name) {
			t.Errorf("%s: %s has no doc comment starting with its name", fset.Position(d.Pos()), d.Name.Name)
		}
	case *ast.GenDecl:
		for _, spec := range d.Specs {
			var names []*ast.Ident
			var doc *ast.CommentGroup
			switch s := spec.(type) {
			case *ast.TypeSpec:
				names, doc = []*ast.Ident{s.Name}, s.Doc
			case *ast.ValueSpec:
				names, doc = s.Names, s.Doc
			}
			if doc == nil && len(d.Specs) == 1 {
				doc = d.Doc
			}
			for _, name := range names {
				if name.IsExported() && !documents(doc, name.Name) {
					t.Errorf("%s: %s has no doc comment starting with its name", fset.Position(name.Pos()), name.Name)
				}
			}
		}
	}
}

func receiverExported(recv *ast.FieldList) bool {
	typ := recv.List[0].Type
	if star, ok := typ.(*ast.StarExpr); ok {
		typ = star.X
	}
	if index, ok := typ.(*ast.IndexExpr); ok {
		typ = index.X
	}
	ident, ok := typ.(*ast.Ident)
	return ok && ident.IsExported()
}

func documents(doc *ast.CommentGroup, name string) bool {
	if doc == nil {
		return false
	}
	text := doc.Text()
	return strings.HasPrefix(text, name+" ") || strings.HasPrefix(text, "A "+name+" ") || strings.HasPrefix(text, "An "+name+" ")
}
