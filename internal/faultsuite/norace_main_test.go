//go:build !race

package faultsuite

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"

	"go.uber.org/goleak"

	"github.com/p2p-go/p2p/internal/testutil"
)

// binary is the p2p command, built once by TestMain.
var binary string

// unavailable says why the suite cannot run here; empty when it can.
var unavailable string

// runPrefix starts the name of every namespace this process makes:
// "p2pft-<pid>". The sweep of leftovers recognises a crashed run's names by
// it.
var runPrefix = fmt.Sprintf("%s%d", namePrefix, os.Getpid())

func TestMain(m *testing.M) {
	unavailable = probeLab()
	var dir string
	if unavailable == "" {
		sweepLeftovers()
		var err error
		dir, err = os.MkdirTemp("", "p2p-faultsuite")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if binary, err = testutil.BuildCommand(dir, "p2p", "github.com/p2p-go/p2p/cmd/p2p"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	printFigures()
	if dir != "" {
		os.RemoveAll(dir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// requireLab skips t where the suite cannot run.
func requireLab(t *testing.T) {
	t.Helper()
	if unavailable != "" {
		t.Skipf("fault suite skipped: %s (it needs root on Linux with `ip netns`; CI runs it)", unavailable)
	}
}

// probeLab checks that this process may build namespaces, bridges and veth
// links, by building one of each and removing them.
func probeLab() string {
	if v := os.Getenv("P2P_FAULTSUITE"); v == "off" || v == "0" {
		return "P2P_FAULTSUITE=" + v
	}
	if runtime.GOOS != "linux" {
		return "not Linux (" + runtime.GOOS + ")"
	}
	if os.Geteuid() != 0 {
		return "not root"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "no ip command (install iproute2)"
	}
	ns := runPrefix + "-probe"
	defer exec.Command("ip", "netns", "del", ns).Run()
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"-n", ns, "link", "add", "br0", "type", "bridge"},
		{"-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "v1"},
		{"-n", ns, "link", "set", "v1", "master", "br0"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Sprintf("`ip %s` failed: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return ""
}

// figure is one measured value of one test.
type figure struct {
	test, name, value string
}

var (
	figuresMu sync.Mutex // guards figures
	figures   []figure
)

// report logs a figure and keeps it for the table TestMain prints.
func report(t *testing.T, name, format string, args ...any) {
	t.Helper()
	value := fmt.Sprintf(format, args...)
	t.Logf("figure: %s: %s", name, value)
	figuresMu.Lock()
	figures = append(figures, figure{test: t.Name(), name: name, value: value})
	figuresMu.Unlock()
}

func printFigures() {
	figuresMu.Lock()
	defer figuresMu.Unlock()
	if len(figures) == 0 {
		return
	}
	fmt.Println("\nfault suite figures:")
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "test\tfigure\tvalue")
	for _, f := range figures {
		fmt.Fprintf(w, "%s\t%s\t%s\n", f.test, f.name, f.value)
	}
	w.Flush()
}
