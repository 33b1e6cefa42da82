package archtest

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// moduleRoot is the repository's root, seen from this package's directory.
const moduleRoot = "../.."

// modulePath is the module's import path (go.mod).
const modulePath = "github.com/p2p-go/p2p"

// core describes one protocol core package and what it may still hold.
type core struct {
	// dir is the package's directory, relative to the module root.
	dir string
	// runtimeFiles are non-test files of the package that are not part of
	// the core and are exempt from the purity rules.
	runtimeFiles []string
	// checkDeps also checks the package's transitive dependencies
	// (go list -deps), for cores whose runtime has left the package.
	checkDeps bool
	// lineLimit, when set, is the most lines a core file may have (the
	// house style's "one file per idea").
	lineLimit int
}

// cores are the protocol cores of the repository.
var cores = []core{
	{dir: "gossip", lineLimit: 600},
	{dir: "hyparview", lineLimit: 600},
	{dir: "plumtree", lineLimit: 600},
	{dir: "kademlia", checkDeps: true, lineLimit: 600},
	// The composition of the Broadcaster's core and the store's is a core
	// too.
	{dir: "internal/stack", lineLimit: 600},
	// The composer both compositions are built with.
	{dir: "internal/compose", lineLimit: 600},
	// The store's core; its Bolt backend (kv/boltstore) and its watchers
	// (kv/watch) are runtime packages outside it. backend.go's in-memory
	// Backend is written by the runtime and guarded by a mutex.
	{dir: "kv", checkDeps: true, runtimeFiles: []string{"backend.go"}, lineLimit: 600},
}

// forbiddenImports are packages a core file may not import: the network,
// the file system and processes, locks (a core has one owner), the global
// random source of math/rand, and the runtime and transport of this module.
var forbiddenImports = map[string]bool{
	"net":                     true,
	"os":                      true,
	"os/exec":                 true,
	"os/signal":               true,
	"io/fs":                   true,
	"syscall":                 true,
	"sync":                    true,
	"math/rand":               true,
	"go.etcd.io/bbolt":        true,
	modulePath + "/node":      true,
	modulePath + "/transport": true,
}

// forbiddenTime are the functions of package time that read the wall clock
// or wait on it; a core takes the time as an input.
var forbiddenTime = map[string]bool{
	"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true,
	"AfterFunc": true, "Tick": true, "NewTimer": true, "NewTicker": true,
}

// clockReads are the functions of package time that read the wall clock,
// forbidden even in a runtime file still in a core package.
var clockReads = map[string]bool{"Now": true, "Since": true, "Until": true}

// allowedRand are the functions of math/rand/v2 a core may call: the ones
// that build a seeded source, never the global one.
var allowedRand = map[string]bool{
	"New": true, "NewPCG": true, "NewChaCha8": true, "NewZipf": true, "Rand": true, "Source": true, "PCG": true, "ChaCha8": true,
}

// TestCoresArePureStateMachines checks every core's non-test files: no
// forbidden import, no clock, no global random source, no goroutine, and
// every exported name documented.
func TestCoresArePureStateMachines(t *testing.T) {
	for _, c := range cores {
		t.Run(c.dir, func(t *testing.T) {
			files := coreFiles(t, c)
			if len(files) == 0 {
				t.Fatalf("no source file in %s", c.dir)
			}
			fset := token.NewFileSet()
			for _, name := range files {
				src, err := os.ReadFile(name)
				if err != nil {
					t.Fatal(err)
				}
				if lines := bytes.Count(src, []byte("\n")); c.lineLimit > 0 && lines > c.lineLimit {
					t.Errorf("%s has %d lines, the limit is %d", name, lines, c.lineLimit)
				}
				file, err := parser.ParseFile(fset, name, src, parser.ParseComments)
				if err != nil {
					t.Fatal(err)
				}
				checkPure(t, fset, file, slices.Contains(c.runtimeFiles, filepath.Base(name)))
				for _, decl := range file.Decls {
					checkDocumented(t, fset, decl)
				}
			}
			if c.checkDeps {
				checkDependencies(t, c.dir)
			}
		})
	}
}

// coreFiles returns the paths of c's non-test Go files.
func coreFiles(t *testing.T, c core) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(moduleRoot, c.dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, path := range matches {
		base := filepath.Base(path)
		if strings.HasSuffix(base, "_test.go") {
			continue
		}
		files = append(files, path)
	}
	return files
}

// checkPure reports every import, clock read, global random call and go
// statement of file that a core may not have. A runtime file still in a core
// package may import the file system, locks and bbolt and start goroutines,
// may wait on timers, but reads no clock, uses no global random source and opens no socket.
func checkPure(t *testing.T, fset *token.FileSet, file *ast.File, runtime bool) {
	t.Helper()
	name := fset.Position(file.Package).Filename
	for _, imp := range file.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		network := path == "net" || strings.HasPrefix(path, "net/") || path == modulePath+"/transport" || strings.HasPrefix(path, modulePath+"/transport/")
		if network || (!runtime && forbiddenImports[path]) {
			t.Errorf("%s imports %s", name, path)
		}
	}
	ast.Inspect(file, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			if runtime {
				break
			}
			t.Errorf("%s: starts a goroutine", fset.Position(n.Pos()))
		case *ast.SelectorExpr:
			x, ok := n.X.(*ast.Ident)
			if !ok {
				break
			}
			if x.Name == "time" && forbiddenTime[n.Sel.Name] && (!runtime || clockReads[n.Sel.Name]) {
				t.Errorf("%s: uses time.%s", fset.Position(n.Pos()), n.Sel.Name)
			}
			if x.Name == "rand" && !allowedRand[n.Sel.Name] {
				t.Errorf("%s: uses the global rand.%s", fset.Position(n.Pos()), n.Sel.Name)
			}
		}
		return true
	})
}

// checkDependencies fails when the package at dir links, directly or
// through another package, the node runtime, a transport, the store's
// runtime packages (kv/boltstore, kv/watch), bbolt or net.
func checkDependencies(t *testing.T, dir string) {
	t.Helper()
	checkDependenciesOf(t, dir, listDeps(t, dir))
}

// listDeps returns what the package at dir links, directly or through
// another package (go list -deps).
func listDeps(t *testing.T, dir string) []string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the dependencies")
	}
	cmd := exec.Command(goTool, "list", "-deps", "./"+dir)
	cmd.Dir = moduleRoot
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./%s: %v", dir, err)
	}
	return strings.Fields(string(out))
}

// checkDependenciesOf is checkDependencies on a listing already made.
func checkDependenciesOf(t *testing.T, dir string, deps []string) {
	t.Helper()
	for _, path := range deps {
		switch {
		case path == modulePath+"/node",
			path == modulePath+"/transport" || strings.HasPrefix(path, modulePath+"/transport/"),
			path == modulePath+"/kv/boltstore" || path == modulePath+"/kv/watch",
			strings.HasPrefix(path, "go.etcd.io/bbolt"),
			path == "net" || path == "os/exec":
			t.Errorf("package %s depends on %s", dir, path)
		}
	}
}

// TestEveryPackageHasDocGo checks that every package of the module has a
// doc.go file carrying its package comment.
func TestEveryPackageHasDocGo(t *testing.T) {
	dirs := map[string]bool{}
	err := filepath.WalkDir(moduleRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != moduleRoot && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			dirs[filepath.Dir(path)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 10 {
		t.Fatalf("found only %d packages under %s", len(dirs), moduleRoot)
	}
	fset := token.NewFileSet()
	for dir := range dirs {
		docPath := filepath.Join(dir, "doc.go")
		if _, err := os.Stat(docPath); err != nil {
			t.Errorf("%s has no doc.go", dir)
			continue
		}
		file, err := parser.ParseFile(fset, docPath, nil, parser.ParseComments|parser.PackageClauseOnly)
		if err != nil {
			t.Fatal(err)
		}
		if file.Doc == nil || !strings.HasPrefix(file.Doc.Text(), "Package "+file.Name.Name+" ") && !strings.HasPrefix(file.Doc.Text(), "Command ") {
			t.Errorf("%s has no package comment starting with \"Package %s\" (or \"Command\")", docPath, file.Name.Name)
		}
	}
}

// checkDocumented reports an exported declaration whose doc comment does
// not start with its name.
func checkDocumented(t *testing.T, fset *token.FileSet, decl ast.Decl) {
	t.Helper()
	switch d := decl.(type) {
	case *ast.FuncDecl:
		if d.Name.IsExported() && (d.Recv == nil || receiverExported(d.Recv)) && !documents(d.Doc, d.Name.Name) {
			t.Errorf("%s: %s has no doc comment starting with its name", fset.Position(d.Pos()), d.Name.Name)
		}
	case *ast.GenDecl:
		// Constants and variables of a documented group may share the
		// group's comment.
		grouped := d.Lparen.IsValid() && d.Doc != nil
		for _, spec := range d.Specs {
			var names []*ast.Ident
			var doc *ast.CommentGroup
			valueSpec := false
			switch s := spec.(type) {
			case *ast.TypeSpec:
				names, doc = []*ast.Ident{s.Name}, s.Doc
			case *ast.ValueSpec:
				names, doc, valueSpec = s.Names, s.Doc, true
				if doc == nil {
					doc = s.Comment
				}
			}
			if doc == nil && !d.Lparen.IsValid() {
				doc = d.Doc
			}
			for _, name := range names {
				if !name.IsExported() || (valueSpec && grouped && doc == nil) {
					continue
				}
				if !documents(doc, name.Name) {
					t.Errorf("%s: %s has no doc comment starting with its name", fset.Position(name.Pos()), name.Name)
				}
			}
		}
	}
}

// receiverExported reports whether a method's receiver type is exported.
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

// documents reports whether doc starts with name (or "A name", "An name").
func documents(doc *ast.CommentGroup, name string) bool {
	if doc == nil {
		return false
	}
	text := doc.Text()
	return strings.HasPrefix(text, name+" ") || strings.HasPrefix(text, "A "+name+" ") || strings.HasPrefix(text, "An "+name+" ")
}

// TestTestHelpersStayOutOfTheLibrary checks that only test files import
// internal/testutil, so that no test helper is compiled into the library or
// the binaries.
func TestTestHelpersStayOutOfTheLibrary(t *testing.T) {
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir(moduleRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != moduleRoot && (name == "testdata" || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		file, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		for _, imp := range file.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == modulePath+"/internal/testutil" {
				t.Errorf("%s imports %s outside a test", path, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked == 0 {
		t.Fatal("no source file checked")
	}
}

// TestSimEngineImportsNoCore checks that the simulator's engine (sim/engine)
// links no protocol core, no node runtime and no transport, so that the
// cores' own tests can drive their cores on it without an import cycle.
func TestSimEngineImportsNoCore(t *testing.T) {
	const dir = "sim/engine"
	deps := listDeps(t, dir)
	checkDependenciesOf(t, dir, deps)
	for _, path := range deps {
		for _, c := range cores {
			if path == modulePath+"/"+c.dir || strings.HasPrefix(path, modulePath+"/"+c.dir+"/") {
				t.Errorf("package %s depends on the core %s", dir, path)
			}
		}
		if path == modulePath+"/sim" {
			t.Errorf("package %s depends on %s", dir, path)
		}
	}
}
