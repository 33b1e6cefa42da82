//go:build !race

package faultsuite

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Bounds the scenarios assert, from issue 9's figures (measured there with
// 16 agents: membership whole 2.4 s and stores identical 1.4 s after a heal,
// an isolated node back 2.0 s after its heal), with room for a busy
// 2-core CI machine.
const (
	// healBound: membership whole and stores identical after a heal.
	healBound = 10 * time.Second
	// detectBound: a member lost without a reset leaves every member list
	// (README, "Failure detection": about 10 s).
	detectBound = 10 * time.Second
	// faultDuration: how long a partition or an isolation lasts; longer
	// than detectBound so that both sides declare the other dead (issue 9
	// used 40 s and 35 s).
	faultDuration = 15 * time.Second
	// observeAfterHeal: how long fail events are collected after a heal
	// (issue 9 saw false ones up to 8.2 s after, the suite up to 11.6 s).
	observeAfterHeal = 20 * time.Second
)

// falseFail is a "member fail" event about a member that stayed reachable
// from the observer.
type falseFail struct {
	observer, subject string
	at                time.Time
}

// falseFails returns the fail events that observers announced about
// subjects that stayed reachable from them: cut says whether the pair's
// link had been cut when the event came.
func falseFails(c *cluster, observers []*agentProc, cut func(observer, subject *agentProc, at time.Time) bool) []falseFail {
	var out []falseFail
	for _, o := range observers {
		for _, te := range o.fails() {
			s := c.byID(te.ev.ID)
			if s == nil || s == o || cut(o, s, te.at) {
				continue
			}
			out = append(out, falseFail{observer: o.name, subject: s.name, at: te.at})
		}
	}
	return out
}

// summarize reports false fail events: count, observers, and the first and
// last relative to ref, the moment named refName.
func summarize(list []falseFail, ref time.Time, refName string) string {
	if len(list) == 0 {
		return "0"
	}
	observers := map[string]bool{}
	first, last := list[0].at, list[0].at
	var examples []string
	for _, f := range list {
		observers[f.observer] = true
		if f.at.Before(first) {
			first = f.at
		}
		if f.at.After(last) {
			last = f.at
		}
		if len(examples) < 4 {
			examples = append(examples, fmt.Sprintf("%s about %s at %s", f.observer, f.subject, since(ref, f.at)))
		}
	}
	return fmt.Sprintf("%d on %d nodes, first %s, last %s after %s (e.g. %s)",
		len(list), len(observers), since(ref, first), since(ref, last), refName, strings.Join(examples, "; "))
}

// TestPartitionHeal: 16 agents split 8/8 for 15 s with writes on both
// sides, then healed. Membership is whole and every store identical within
// healBound of the heal, the later of two conflicting writes wins
// everywhere, no acknowledged write is lost, and no node announces the
// failure of a member on its own side (issue 9, item 1).
func TestPartitionHeal(t *testing.T) {
	const n = 16
	c := newCluster(t, n)
	agents := c.startAll(n)
	mustPoll(t, 60*time.Second, "16 agents to list each other", membersAre(agents, agents))
	near, far := agents[:n/2], agents[n/2:]
	var farIndexes []int
	side := map[*agentProc]int{}
	for _, p := range far {
		farIndexes = append(farIndexes, p.index)
		side[p] = 1
	}
	var writes acks
	for i, p := range agents {
		if err := writes.put(p, fmt.Sprintf("%sbefore/%02d", userPrefix, i), p.name); err != nil {
			t.Fatal(err)
		}
	}
	mustPoll(t, 30*time.Second, "the first writes everywhere", storesAgree(agents, writes.latest(nil), true))

	partitioned := time.Now()
	c.lab.split(farIndexes)
	t.Logf("partitioned: %d | %d agents", len(near), len(far))
	// Writes on both sides; conflict/1 is written on the near side first
	// and on the far side 6 s later, conflict/2 the other way round: the
	// later write must win everywhere after the heal.
	for step := 0; time.Since(partitioned) < faultDuration; step++ {
		a, b := near[step%len(near)], far[step%len(far)]
		if err := writes.put(a, fmt.Sprintf("%snear/%03d", userPrefix, step), a.name); err != nil {
			t.Fatal(err)
		}
		if err := writes.put(b, fmt.Sprintf("%sfar/%03d", userPrefix, step), b.name); err != nil {
			t.Fatal(err)
		}
		switch step {
		case 4:
			mustPut(t, &writes, a, userPrefix+"conflict/1", "near")
			mustPut(t, &writes, b, userPrefix+"conflict/2", "far")
		case 16:
			mustPut(t, &writes, b, userPrefix+"conflict/1", "far")
			mustPut(t, &writes, a, userPrefix+"conflict/2", "near")
		}
		time.Sleep(500 * time.Millisecond) // the pace of the writes
	}
	detected, _ := membersAre(near, near)()
	detectedFar, _ := membersAre(far, far)()
	report(t, "partition detected on both sides by the heal", "%v", detected && detectedFar)

	recoveredBefore, err := recovered(agents)
	if err != nil {
		t.Fatal(err)
	}
	healed := time.Now()
	c.lab.heal(farIndexes)
	want := writes.latest(nil)
	if want[userPrefix+"conflict/1"] != "far" || want[userPrefix+"conflict/2"] != "near" {
		t.Fatalf("the conflicting writes were not acknowledged in the planned order: %v", want)
	}
	took, held, whys := pollEach(healed, healBound+20*time.Second, membersAre(agents, agents), storesAgree(agents, want, true))
	membersTook, membersOK, membersWhy := took[0], held[0], whys[0]
	storesTook, storesOK, storesWhy := took[1], held[1], whys[1]
	report(t, "membership whole after the heal", "%.2fs", membersTook.Seconds())
	report(t, "stores identical after the heal", "%.2fs (%d keys of the suite)", storesTook.Seconds(), len(want))
	t.Run("whole_after_heal", func(t *testing.T) {
		if !membersOK || membersTook > healBound {
			t.Errorf("membership whole %.2fs after the heal, want ≤ %v%s", membersTook.Seconds(), healBound, because(membersWhy))
		}
		if !storesOK || storesTook > healBound {
			t.Errorf("stores identical %.2fs after the heal, want ≤ %v: later writes win and nothing is lost%s", storesTook.Seconds(), healBound, because(storesWhy))
		}
	})

	// Fail events keep being collected until observeAfterHeal.
	time.Sleep(time.Until(healed.Add(observeAfterHeal)))
	crossed := func(o, s *agentProc) bool { return side[o] != side[s] }
	requireStreams(t, agents)
	reportRecovered(t, agents, recoveredBefore, "the heal")
	wrong := falseFails(c, agents, func(o, s *agentProc, at time.Time) bool { return crossed(o, s) && !at.Before(partitioned) })
	report(t, "fail events about own-side members", "%s", summarize(wrong, healed, "the heal"))
	// Fail events about the other side after the heal are reported, not
	// asserted: some may end detections of the partition begun before it.
	crossAfterHeal := 0
	for _, o := range agents {
		for _, te := range o.fails() {
			if s := c.byID(te.ev.ID); te.at.After(healed) && s != nil && crossed(o, s) {
				crossAfterHeal++
			}
		}
	}
	report(t, "fail events about the other side after the heal", "%d", crossAfterHeal)
	t.Run("no_false_deaths", func(t *testing.T) {
		if len(wrong) > 0 {
			t.Errorf("%d fail events about members that stayed reachable from their observer: %s", len(wrong), summarize(wrong, healed, "the heal"))
		}
	})
}

// reportRecovered reports the broadcasts that agents recovered from
// summaries since they had recovered before in all, at the moment named
// since.
func reportRecovered(t *testing.T, agents []*agentProc, before int, since string) {
	t.Helper()
	n, err := recovered(agents)
	if err != nil {
		t.Error(err)
		return
	}
	report(t, "broadcasts recovered from summaries", "%d since %s, summed over %d agents (p2p_broadcasts_recovered_total: writes and membership events included)", n-before, since, len(agents))
}

func mustPut(t *testing.T, a *acks, p *agentProc, key, value string) {
	t.Helper()
	if err := a.put(p, key, value); err != nil {
		t.Fatal(err)
	}
}

// TestIsolationHeal: one of 12 agents is cut off for 15 s (its bridge port
// down), then reconnected. It rejoins by itself within healBound, and no
// agent that was never cut announces the failure of another that was never
// cut (issue 9, item 1: 81 such events after a 35 s isolation).
func TestIsolationHeal(t *testing.T) {
	const n = 12
	c := newCluster(t, n)
	agents := c.startAll(n)
	mustPoll(t, 60*time.Second, "12 agents to list each other", membersAre(agents, agents))
	isolated := c.agents[5]
	var others []*agentProc
	for _, p := range agents {
		if p != isolated {
			others = append(others, p)
		}
	}

	cutAt := time.Now()
	c.lab.cut(isolated.index)
	dropTook, dropOK, _ := poll(faultDuration, membersAre(others, others))
	if dropOK {
		report(t, "isolated agent dropped by the others", "%.2fs after the cut", dropTook.Seconds())
	} else {
		report(t, "isolated agent dropped by the others", "not within %v", faultDuration)
	}
	time.Sleep(time.Until(cutAt.Add(faultDuration)))

	recoveredBefore, err := recovered(agents)
	if err != nil {
		t.Fatal(err)
	}
	healed := time.Now()
	c.lab.restore(isolated.index)
	took, ok, why := pollFrom(healed, healBound+20*time.Second, membersAre(agents, agents))
	report(t, "isolated agent rejoined (membership whole)", "%.2fs after the heal", took.Seconds())
	t.Run("rejoins_by_itself", func(t *testing.T) {
		if !ok || took > healBound {
			t.Errorf("membership whole %.2fs after the heal, want ≤ %v%s", took.Seconds(), healBound, because(why))
		}
	})

	time.Sleep(time.Until(healed.Add(observeAfterHeal)))
	requireStreams(t, others)
	reportRecovered(t, agents, recoveredBefore, "the heal")
	wrong := falseFails(c, others, func(o, s *agentProc, at time.Time) bool { return s == isolated && !at.Before(cutAt) })
	report(t, "fail events about never-cut peers seen by never-cut nodes", "%s", summarize(wrong, healed, "the heal"))
	t.Run("no_false_deaths", func(t *testing.T) {
		if len(wrong) > 0 {
			t.Errorf("%d fail events about never-cut peers seen by never-cut nodes: %s", len(wrong), summarize(wrong, healed, "the heal"))
		}
	})
}
