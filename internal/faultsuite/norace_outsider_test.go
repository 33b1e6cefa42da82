//go:build !race

package faultsuite

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestOutsider: next to 6 agents sharing a secret, an agent with another
// secret and one with none try to join through members, for 8 s while the
// cluster broadcasts and writes. Neither is ever listed by a member nor
// lists one, neither receives a broadcast or a key, and the members count
// the refused handshakes.
func TestOutsider(t *testing.T) {
	const n = 6
	c := newCluster(t, n+2)
	agents := c.startAll(n)
	mustPoll(t, 60*time.Second, "6 agents to list each other", membersAre(agents, agents))

	out, err := exec.Command(binary, "keygen").Output()
	if err != nil {
		t.Fatal(err)
	}
	otherSecret := strings.TrimSpace(string(out))
	wrong := c.start(n+1, otherSecret, "--join", c.lab.overlayAddr(1), "--join", c.lab.overlayAddr(2))
	none := c.start(n+2, "", "--join", c.lab.overlayAddr(3))
	outsiders := []*agentProc{wrong, none}
	for _, p := range outsiders {
		p.waitRunning()
	}
	outsiderIDs := idsOf(outsiders)

	tag := t.Name()
	s := startSender(agents[0], tag, 200*time.Millisecond)
	defer s.stop()
	var writes acks
	w := startWriter(&writes, "members", agents, 200*time.Millisecond)
	defer w.stop()
	watchStart := time.Now()
	polls := 0
	for time.Since(watchStart) < 8*time.Second {
		for _, p := range agents {
			ids, err := p.memberIDs()
			if err != nil {
				t.Fatal(err)
			}
			for id := range ids {
				if outsiderIDs[id] {
					t.Fatalf("%s lists outsider %s as a member", p.name, c.nameOf(id))
				}
			}
		}
		polls++
		time.Sleep(250 * time.Millisecond) // the pace of the membership polls
	}
	s.stop()
	w.stop()

	for _, o := range outsiders {
		ids, err := o.memberIDs()
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != 1 || !ids[o.state.ID] {
			t.Errorf("outsider %s lists %d members (%s), want only itself", o.name, len(ids), diffNames(c, ids, map[string]bool{o.state.ID: true}))
		}
		if got := len(o.received(tag)); got > 0 {
			t.Errorf("outsider %s received %d of the cluster's broadcasts", o.name, got)
		}
		view, err := viewOf(o)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(view.userValues()); got > 0 {
			t.Errorf("outsider %s holds %d of the cluster's keys", o.name, got)
		}
	}
	requireStreams(t, slices.Concat(agents, outsiders))
	joins := 0
	for _, p := range agents {
		for _, te := range p.events() {
			if te.ev.Type == "member" && outsiderIDs[te.ev.ID] {
				joins++
			}
		}
	}
	if joins > 0 {
		t.Errorf("members announced %d membership events about outsiders", joins)
	}
	var refused uint64
	for _, p := range agents {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		info, err := p.client.Info(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		refused += info.Stats.HandshakesRefused
	}
	report(t, "outsiders admitted", "0 of 2 over %d membership polls of %d agents; %d handshakes refused by members; %d broadcasts and %d keys kept from them",
		polls, n, refused, len(s.acceptedSince(time.Time{})), len(writes.all()))
	if refused == 0 {
		t.Errorf("the members counted no refused handshake, though two outsiders knocked for 8 s")
	}
}
