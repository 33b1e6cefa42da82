package simcmd

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// execute runs the sim command with args and returns its stdout.
func execute(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := Command()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestBroadcastCommandPrintsTableAndWritesFiles(t *testing.T) {
	dir := t.TempDir()
	jsonPath, plotPath := filepath.Join(dir, "out.json"), filepath.Join(dir, "out.svg")
	out, err := execute(t, "broadcast", "--nodes", "30", "--messages", "3", "--protocol", "plumtree",
		"--settle", "5s", "--latency", "uniform:5ms,15ms", "--bytes", "--quiet", "--json-out", jsonPath, "--plot", plotPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"delivery ratio", "RMR", "bytes per node per message", "plumtree"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	var result struct {
		Nodes   int `json:"nodes"`
		Summary struct {
			Messages int `json:"messages"`
		} `json:"summary"`
	}
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &result); err != nil || result.Nodes != 30 || result.Summary.Messages != 3 {
		t.Fatalf("JSON %+v, %v", result, err)
	}
	svg, err := os.ReadFile(plotPath)
	if err != nil || !bytes.HasPrefix(svg, []byte("<svg")) {
		t.Fatalf("plot: %v, %.40q", err, svg)
	}
}

func TestScenarioCommandsRun(t *testing.T) {
	for _, args := range [][]string{
		{"massfail", "--nodes", "40", "--messages", "3", "--kill", "0.3", "--protocol", "plumtree", "--settle", "5s", "--quiet"},
		{"kademlia", "--nodes", "40", "--lookups", "10", "--records", "3", "--quiet"},
		{"kv", "--nodes", "12", "--writes", "2", "--partition-writes", "1", "--partition-time", "4s", "--settle", "5s", "--quiet"},
	} {
		out, err := execute(t, args...)
		if err != nil {
			t.Errorf("%v: %v", args, err)
			continue
		}
		if !strings.Contains(out, "scenario") || !strings.Contains(out, args[0]) {
			t.Errorf("%v printed:\n%s", args, out)
		}
	}
}

func TestBadFlagsAreRefusedWithTheirName(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"broadcast", "--latency", "pareto:1ms"}, "--latency"},
		{[]string{"broadcast", "--protocol", "carrier-pigeon"}, "--protocol"},
		{[]string{"massfail", "--kill", "0"}, "--kill"},
		{[]string{"broadcast", "--loss", "1.5"}, "Loss"},
	} {
		_, err := execute(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %s", tc.args, err, tc.want)
		}
	}
}
