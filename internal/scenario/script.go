package scenario

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rewrite, set by the test flag -rewrite, makes Run write the output each
// command printed in place of the expected output.
var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of scenario scripts")

// separator ends a case's command and starts its expected output.
const separator = "----"

// Cmd is one command of a script.
type Cmd struct {
	// Name is the command's first word; Args are the others, in order.
	Name string
	Args []string
	// Pos is the file and line of the command, for error messages.
	Pos string

	leading  []string // comment and blank lines before the command
	line     string   // the command line as written
	expected string   // the expected output, lines joined by "\n"
	actual   string
}

// String returns the command line as written.
func (c *Cmd) String() string { return c.line }

// Positional returns the arguments that are not key=value options.
func (c *Cmd) Positional() []string {
	var out []string
	for _, a := range c.Args {
		if !strings.Contains(a, "=") {
			out = append(out, a)
		}
	}
	return out
}

// Option returns the value of the key=value argument named key.
func (c *Cmd) Option(key string) (string, bool) {
	for _, a := range c.Args {
		if k, v, ok := strings.Cut(a, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// Int returns the option key as an integer, or def when it is absent.
func (c *Cmd) Int(key string, def int) (int, error) {
	v, ok := c.Option(key)
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("option %s=%q: %w", key, v, err)
	}
	return n, nil
}

// Duration returns the option key as a duration, or def when it is absent.
func (c *Cmd) Duration(key string, def time.Duration) (time.Duration, error) {
	v, ok := c.Option(key)
	if !ok {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("option %s=%q: %w", key, v, err)
	}
	return d, nil
}

// script is a parsed file: its cases and the lines after the last one.
type script struct {
	cmds     []*Cmd
	trailing []string
}

// parse reads a script. It fails on a command without a separator.
func parse(path, text string) (*script, error) {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	s := &script{}
	var leading []string
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			leading = append(leading, line)
			continue
		}
		fields := strings.Fields(trimmed)
		cmd := &Cmd{Name: fields[0], Args: fields[1:], Pos: fmt.Sprintf("%s:%d", path, i+1), leading: leading, line: trimmed}
		leading = nil
		if i+1 >= len(lines) || strings.TrimSpace(lines[i+1]) != separator {
			return nil, fmt.Errorf("%s: command %q is not followed by %q", cmd.Pos, trimmed, separator)
		}
		i += 2
		var out []string
		for ; i < len(lines) && strings.TrimSpace(lines[i]) != ""; i++ {
			out = append(out, lines[i])
		}
		i-- // the loop's i++ moves to the blank line, kept as the next case's leading line
		cmd.expected = strings.Join(out, "\n")
		s.cmds = append(s.cmds, cmd)
	}
	s.trailing = leading
	return s, nil
}

// format writes the script back with each command's actual output.
func (s *script) format() string {
	var b strings.Builder
	for _, c := range s.cmds {
		for _, l := range c.leading {
			b.WriteString(l + "\n")
		}
		b.WriteString(c.line + "\n" + separator + "\n")
		if c.actual != "" {
			b.WriteString(c.actual + "\n")
		}
	}
	for _, l := range s.trailing {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// normalize trims trailing spaces from every line and drops blank lines,
// which would end the output in a script.
func normalize(out string) string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimRight(l, " \t")
		if l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// Run runs the script at path: do is called for each command in order and
// returns what the command printed, which must equal the expected output
// (blank lines and trailing spaces aside). With -rewrite the file is
// rewritten with the printed output instead.
func Run(t *testing.T, path string, do func(c *Cmd) string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := parse(path, string(data))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range s.cmds {
		c.actual = normalize(do(c))
		if !*rewrite && c.actual != c.expected {
			t.Errorf("%s: %s\nexpected:\n%s\ngot:\n%s\n(-rewrite writes what was printed)", c.Pos, c.line, indent(c.expected), indent(c.actual))
		}
	}
	if *rewrite {
		if err := os.WriteFile(path, []byte(s.format()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// indent prefixes each line for error messages.
func indent(s string) string {
	if s == "" {
		return "    (nothing)"
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

// Walk runs every *.txt script of dir as a subtest named after the file,
// each with a fresh state from newRunner.
func Walk(t *testing.T, dir string, newRunner func(t *testing.T) func(c *Cmd) string) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no scripts in %s", dir)
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			Run(t, path, newRunner(t))
		})
	}
}
