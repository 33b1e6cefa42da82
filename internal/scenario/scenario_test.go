package scenario

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/p2p-go/p2p/hyparview"
	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/sim/engine"
)

const sample = `# a comment

nodes 2 active=3
----
added a b

# two lines of output
messages
----
a -> b JoinMsg
b -> a NeighborMsg

time
----

# trailing comment
`

// TestParseFormat checks that a script written back with the output it
// expects is unchanged, comments and blank lines included.
func TestParseFormat(t *testing.T) {
	s, err := parse("sample", sample)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.cmds) != 3 {
		t.Fatalf("parsed %d commands, want 3", len(s.cmds))
	}
	c := s.cmds[0]
	if c.Name != "nodes" || strings.Join(c.Positional(), ",") != "2" || c.Pos != "sample:3" {
		t.Errorf("first command: %q %v at %s", c.Name, c.Args, c.Pos)
	}
	if v, err := c.Int("active", 0); err != nil || v != 3 {
		t.Errorf("active=%d, %v; want 3", v, err)
	}
	if s.cmds[1].expected != "a -> b JoinMsg\nb -> a NeighborMsg" || s.cmds[2].expected != "" {
		t.Errorf("expected outputs %q and %q", s.cmds[1].expected, s.cmds[2].expected)
	}
	for _, c := range s.cmds {
		c.actual = c.expected
	}
	if got := s.format(); got != sample {
		t.Errorf("format changed the script:\n%s", got)
	}
}

// TestParseRefusesCommandWithoutSeparator checks the one syntax error.
func TestParseRefusesCommandWithoutSeparator(t *testing.T) {
	if _, err := parse("bad", "nodes 2\nheal\n----\n"); err == nil || !strings.Contains(err.Error(), "bad:1") {
		t.Errorf("parse: %v, want an error at bad:1", err)
	}
}

// TestRunRewrites checks -rewrite: the file takes the printed output.
func TestRunRewrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.txt")
	if err := os.WriteFile(path, []byte("# c\necho x y\n----\nstale\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	*rewrite = true
	defer func() { *rewrite = false }()
	Run(t, path, func(c *Cmd) string { return strings.Join(c.Args, "\n\n") + "  " })
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(data), "# c\necho x y\n----\nx\ny\n"; got != want {
		t.Errorf("rewritten:\n%q\nwant\n%q", got, want)
	}
}

// TestNetCommands runs the shared commands on HyParView cores: errors are
// printed, drops lose exactly the messages named, and run-until-quiet
// stops when nothing is in flight.
func TestNetCommands(t *testing.T) {
	n, err := New(Adapter{
		New: func(id engine.Identity, _ *Cmd) (overlay.Core, error) {
			return hyparview.New(hyparview.Config{Self: id.Info, Seed: id.Seed})
		},
		Join: func(n *Net, a, b int) error {
			if b >= 0 {
				n.Step(a, hyparview.Join{Contacts: []string{engine.Addr(b)}})
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	do := func(line string) string {
		f := strings.Fields(line)
		return n.Handle(&Cmd{Name: f[0], Args: f[1:], line: line})
	}
	for _, step := range []struct{ cmd, want string }{
		{"bogus", `error: unknown command "bogus"`},
		{"nodes 3", "added a b c"},
		{"join z a", `error: no node "z"`},
		{"drop b a JoinMsg", ""},
		{"join b a", ""},
		{"deliver", ""},
		{"join c a", ""},
		{"deliver", "c -> a JoinMsg"},
		{"run-until-quiet", "quiet after 40ms"},
		{"time", "80ms"},
		{"counts", "JoinMsg 1\nNeighborMsg 1\nNeighborReplyMsg 1"},
	} {
		if got := do(step.cmd); got != step.want {
			t.Errorf("%s: got %q, want %q", step.cmd, got, step.want)
		}
	}
}

// TestOnlyTestsImportScenario keeps this package out of the library: no
// file of the module other than a _test.go file imports it.
func TestOnlyTestsImportScenario(t *testing.T) {
	const self = "github.com/p2p-go/p2p/internal/scenario"
	files := token.NewFileSet()
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != "../.." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		file, err := parser.ParseFile(files, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, spec := range file.Imports {
			if p, _ := strconv.Unquote(spec.Path.Value); p == self {
				t.Errorf("%s imports %s; only tests may", path, self)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
