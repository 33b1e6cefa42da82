//go:build !race

package faultsuite

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

// namePrefix starts the name of every namespace the suite makes.
const namePrefix = "p2pft-"

// agentPort is the overlay's port in every agent's namespace.
const agentPort = 7000

// labSeq numbers the labs of this process.
var labSeq atomic.Int32

// lab is a private network: a namespace holding the bridges br0 and br1, and
// size namespaces, one per agent, each linked by a veth pair (eth0 in the
// agent's namespace, v<i> in the bridges' namespace) to br0, with the
// address 10.250.0.<i>/24. Nothing is added to the root namespace.
type lab struct {
	t    *testing.T
	name string // p2pft-<pid>-<seq>
	size int
}

// newLab builds a lab of size agent namespaces (1 to 250) and removes it
// when t ends.
func newLab(t *testing.T, size int) *lab {
	t.Helper()
	requireLab(t)
	l := &lab{t: t, name: fmt.Sprintf("%s-%d", runPrefix, labSeq.Add(1)), size: size}
	t.Cleanup(l.destroy)
	br := l.bridgeNS()
	l.ip("netns", "add", br)
	l.ip("-n", br, "link", "set", "lo", "up")
	for _, bridge := range []string{"br0", "br1"} {
		l.ip("-n", br, "link", "add", bridge, "type", "bridge")
		l.ip("-n", br, "link", "set", bridge, "up")
	}
	for i := 1; i <= size; i++ {
		ns := l.ns(i)
		l.ip("netns", "add", ns)
		l.ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", l.port(i), "netns", br)
		l.ip("-n", br, "link", "set", l.port(i), "master", "br0")
		l.ip("-n", br, "link", "set", l.port(i), "up")
		l.ip("-n", ns, "addr", "add", l.ipAddr(i)+"/24", "dev", "eth0")
		l.ip("-n", ns, "link", "set", "eth0", "up")
		l.ip("-n", ns, "link", "set", "lo", "up")
	}
	return l
}

func (l *lab) bridgeNS() string { return l.name + "-br" }

// ns is the namespace of agent i (1-based).
func (l *lab) ns(i int) string { return fmt.Sprintf("%s-a%d", l.name, i) }

// port is agent i's bridge port.
func (l *lab) port(i int) string { return "v" + strconv.Itoa(i) }

// ipAddr is agent i's address.
func (l *lab) ipAddr(i int) string { return fmt.Sprintf("10.250.0.%d", i) }

// overlayAddr is agent i's overlay address.
func (l *lab) overlayAddr(i int) string { return fmt.Sprintf("%s:%d", l.ipAddr(i), agentPort) }

// cut brings agent i's bridge port down: its packets are dropped, and no
// peer sees a reset.
func (l *lab) cut(i int) { l.ip("-n", l.bridgeNS(), "link", "set", l.port(i), "down") }

// restore brings agent i's bridge port up again.
func (l *lab) restore(i int) { l.ip("-n", l.bridgeNS(), "link", "set", l.port(i), "up") }

// split moves the ports of the agents in far to br1: they reach each other,
// and the others reach each other, but no packet crosses.
func (l *lab) split(far []int) {
	for _, i := range far {
		l.ip("-n", l.bridgeNS(), "link", "set", l.port(i), "master", "br1")
	}
}

// heal moves the ports of far back to br0.
func (l *lab) heal(far []int) {
	for _, i := range far {
		l.ip("-n", l.bridgeNS(), "link", "set", l.port(i), "master", "br0")
	}
}

func (l *lab) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
}

// destroy kills whatever still runs in the lab's namespaces and deletes
// them (the veth pairs go with them).
func (l *lab) destroy() {
	names := []string{l.bridgeNS()}
	for i := 1; i <= l.size; i++ {
		names = append(names, l.ns(i))
	}
	for _, ns := range names {
		if err := removeNamespace(ns); err != nil {
			l.t.Errorf("cleanup: %v", err)
		}
	}
}

// removeNamespace SIGKILLs the processes left in ns (by their IDs, as `ip
// netns pids` lists them) and deletes ns. A namespace that does not exist is
// not an error.
func removeNamespace(ns string) error {
	if _, err := os.Stat("/run/netns/" + ns); os.IsNotExist(err) {
		return nil
	}
	if out, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
		for _, field := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(field); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns del %s: %v: %s", ns, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// sweepLeftovers removes the namespaces of earlier runs of the suite whose
// process is gone (a crashed or killed run); those of a run still going, in
// another process, are left alone.
func sweepLeftovers() {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), namePrefix)
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || suiteRunning(pid) {
			continue
		}
		if err := removeNamespace(e.Name()); err != nil {
			fmt.Fprintln(os.Stderr, "faultsuite: sweep of leftovers:", err)
		} else {
			fmt.Fprintln(os.Stderr, "faultsuite: removed namespace", e.Name(), "left by an earlier run")
		}
	}
}

// suiteRunning reports whether pid is a live test binary of this package.
func suiteRunning(pid int) bool {
	if pid == os.Getpid() {
		return true
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return err == nil && strings.HasPrefix(strings.TrimSpace(string(comm)), "faultsuite")
}
