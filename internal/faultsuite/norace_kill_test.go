//go:build !race

package faultsuite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Timings of the SIGKILL scenarios.
const (
	// broadcastPeriod: one broadcast every 100 ms from a survivor (issue 9).
	broadcastPeriod = 100 * time.Millisecond
	// sendAfterKill: how long the survivor keeps broadcasting after the
	// kill; the overlay repairs within 2 to 5 s (issue 9).
	sendAfterKill = 8 * time.Second
	// recoveryWait: how long after the last broadcast the survivors have
	// to hold every message.
	recoveryWait = 20 * time.Second
	// handshakeRefusedLog is what package node logs when a peer refuses
	// the handshake; with one secret everywhere a SIGKILL must not cause
	// it (issue 9, item 4: a reset logged as a refusal).
	handshakeRefusedLog = "peer refused the handshake"
)

// TestKill50: SIGKILL 8 of 16 agents at once while a survivor broadcasts
// every 100 ms: every message sent from the kill onwards reaches every
// survivor exactly once, no write acknowledged by a survivor (or by a
// victim a second before the kill) is lost, the survivors drop the dead
// within detectBound, announce no survivor failed, and log no reset as a
// refused handshake. Each of these is a subtest.
func TestKill50(t *testing.T) { testKill(t, 16, 8, 50) }

// TestKill75: the same with 12 of 16 agents killed (issue 9, item 2: 50 %
// of the messages sent 0 to 2 s after the kill were lost on main), in three
// trials on fresh clusters: whether the survivors are left as islands of
// the overlay varies from one kill to the next.
func TestKill75(t *testing.T) {
	for trial := 1; trial <= 3; trial++ {
		t.Run(fmt.Sprintf("trial%d", trial), func(t *testing.T) { testKill(t, 16, 12, uint64(75+trial)) })
	}
}

func testKill(t *testing.T, n, kill int, seed uint64) {
	c := newCluster(t, n)
	agents := c.startAll(n)
	mustPoll(t, 60*time.Second, fmt.Sprintf("%d agents to list each other", n), membersAre(agents, agents))

	// The sender is the last agent.
	from := agents[n-1]
	tag := t.Name()
	s := startSender(from, tag, broadcastPeriod)
	defer s.stop()
	// Every event stream is open once every other agent delivered one of
	// the broadcasts sent after the streams started.
	mustPoll(t, 30*time.Second, "the first broadcasts everywhere", func() (bool, string) {
		for _, p := range agents {
			if p != from && maxSeq(p.received(tag)) < 5 {
				return false, p.name + " has not delivered a broadcast after the fifth"
			}
		}
		return true, ""
	})
	var writes acks
	w := startWriter(&writes, "k", agents, 50*time.Millisecond)
	defer w.stop()
	time.Sleep(1500 * time.Millisecond) // writes before the kill

	// The victims are the sender's overlay neighbours, so that it is left
	// without a link and broadcasts while the overlay repairs (the case
	// issue 9 describes), then others drawn at random.
	victims := neighborsOf(t, from, kill)
	rng := rand.New(rand.NewPCG(seed, 9))
	for _, i := range rng.Perm(n - 1) {
		if len(victims) < kill && !slices.Contains(victims, agents[i]) {
			victims = append(victims, agents[i])
		}
	}
	var survivors, receivers []*agentProc
	for _, p := range agents {
		if !slices.Contains(victims, p) {
			survivors = append(survivors, p)
			if p != from {
				receivers = append(receivers, p)
			}
		}
	}
	t.Logf("sender %s; victims %s", from.name, names(victims))
	recoveredBefore, err := recovered(survivors)
	if err != nil {
		t.Fatal(err)
	}

	killed := time.Now()
	for _, p := range victims {
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("SIGKILL %s: %v", p.name, err)
		}
	}
	for _, p := range victims {
		p.waitExit()
	}
	// The survivors drop the dead while the broadcasts and writes go on.
	dropTook, dropOK, dropWhy := pollFrom(killed, sendAfterKill+recoveryWait, membersAre(survivors, survivors))
	time.Sleep(time.Until(killed.Add(3 * time.Second))) // writes after the kill, on the survivors
	w.stop()
	lastWrite := time.Now()
	// No acknowledged write lost: every write a survivor acknowledged, and
	// every write a victim acknowledged a second or more before the kill,
	// is on every survivor. Writes acknowledged by a victim just before it
	// died are durable on its disk only; they are counted.
	required := writes.latest(func(a ack) bool {
		return !slices.Contains(victims, a.by) || killed.Sub(a.at) >= time.Second
	})
	storesTook, storesOK, storesWhy := pollFrom(lastWrite, 30*time.Second, storesAgree(survivors, required, false))
	time.Sleep(time.Until(killed.Add(sendAfterKill)))
	s.stop()
	lastSend := time.Now()

	after := s.acceptedSince(killed)
	refused, refusedWhy := s.refusedCount()
	if len(after) == 0 {
		t.Fatalf("the survivor accepted no broadcast after the kill (%d refused: %s)", refused, refusedWhy)
	}
	// Wait for every survivor to hold every message sent from the kill on.
	delivered := func() (bool, string) {
		for _, p := range receivers {
			got := p.received(tag)
			for _, seq := range after {
				if got[seq] == 0 {
					return false, fmt.Sprintf("%s lacks broadcast %d", p.name, seq)
				}
			}
		}
		return true, ""
	}
	recoverTook, _, _ := pollFrom(lastSend, recoveryWait, delivered)
	requireStreams(t, survivors)
	reportRecovered(t, survivors, recoveredBefore, "the kill")

	// Delivery figures: per receiver, over the messages sent from the
	// kill on, and over those sent in the first 2 s.
	var total, got, early, earlyGot, dup int
	var short []string
	for _, p := range receivers {
		counts := p.received(tag)
		for seq, k := range counts {
			if k > 1 {
				dup += k - 1
				if len(short) < 6 {
					short = append(short, fmt.Sprintf("%s got %d %d times", p.name, seq, k))
				}
			}
		}
		missing := 0
		for _, seq := range after {
			total++
			sentAt := s.acceptedAt(seq)
			isEarly := sentAt.Sub(killed) < 2*time.Second
			if isEarly {
				early++
			}
			if counts[seq] > 0 {
				got++
				if isEarly {
					earlyGot++
				}
			} else {
				missing++
			}
		}
		if missing > 0 && len(short) < 6 {
			short = append(short, fmt.Sprintf("%s lacks %d of %d", p.name, missing, len(after)))
		}
	}
	report(t, "broadcasts from the kill on, delivered to survivors", "%d/%d (%.1f %%), %d duplicates; sent 0-2 s after the kill: %d/%d (%.1f %%); %d sends refused",
		got, total, 100*float64(got)/float64(total), dup, earlyGot, early, 100*float64(earlyGot)/float64(max(early, 1)), refused)
	if got == total {
		report(t, "last broadcast delivered everywhere", "%.2fs after the last send", recoverTook.Seconds())
	}
	t.Run("every_broadcast_exactly_once", func(t *testing.T) {
		if refused > 0 {
			t.Errorf("the survivor refused %d of its broadcasts (e.g. %s): a refused broadcast is a message not sent", refused, refusedWhy)
		}
		if got != total || dup != 0 {
			t.Errorf("broadcasts sent from the kill on: %d of %d deliveries to %d survivors, %d duplicates, want every one exactly once (%s)",
				got, total, len(receivers), dup, strings.Join(short, "; "))
		}
	})

	if dropOK {
		report(t, "survivors list only survivors", "%.2fs after the kill", dropTook.Seconds())
	} else {
		report(t, "survivors list only survivors", "not within %v", sendAfterKill+recoveryWait)
	}
	t.Run("dead_dropped_in_time", func(t *testing.T) {
		if !dropOK {
			t.Errorf("the survivors still list dead members %v after the kill: %s", sendAfterKill+recoveryWait, dropWhy)
		} else if dropTook > detectBound {
			t.Errorf("the survivors dropped the dead %.2fs after the kill, want ≤ %v", dropTook.Seconds(), detectBound)
		}
	})
	t.Run("no_acknowledged_write_lost", func(t *testing.T) {
		if !storesOK {
			t.Errorf("acknowledged writes: %s", storesWhy)
		}
	})
	view, err := viewOf(survivors[0])
	if err != nil {
		t.Fatal(err)
	}
	have := view.userValues()
	var late, lateKept int
	for _, a := range writes.all() {
		if slices.Contains(victims, a.by) && killed.Sub(a.at) < time.Second {
			late++
			if have[a.key] == a.value {
				lateKept++
			}
		}
	}
	report(t, "acknowledged writes on every survivor", "%d of %d required (stores identical %.2fs after the last write); writes a victim acknowledged in its last second: %d of %d reached the survivors; %d writes failed",
		len(required)-len(missingKeys(have, required)), len(required), storesTook.Seconds(), lateKept, late, w.failed)

	wrong := falseFails(c, survivors, func(o, s *agentProc, at time.Time) bool { return slices.Contains(victims, s) && !at.Before(killed) })
	report(t, "fail events about survivors seen by survivors", "%s", summarize(wrong, killed, "the kill"))
	t.Run("no_false_deaths", func(t *testing.T) {
		if len(wrong) > 0 {
			t.Errorf("%d fail events about survivors: %s", len(wrong), summarize(wrong, killed, "the kill"))
		}
	})
	refusedLogs := 0
	for _, p := range survivors {
		refusedLogs += p.logCount(handshakeRefusedLog)
	}
	report(t, "survivors' log lines '"+handshakeRefusedLog+"'", "%d", refusedLogs)
	t.Run("resets_not_logged_as_refusals", func(t *testing.T) {
		if refusedLogs > 0 {
			t.Errorf("survivors logged %q %d times, though every agent has the same secret (a reset is not a refusal)", handshakeRefusedLog, refusedLogs)
		}
	})
}

// TestSilentHostLoss: 2 of 8 agents lose their links (bridge ports down: no
// reset reaches anyone) and are then killed. Every survivor drops them
// within detectBound of the cut (README, "Failure detection"; issue 9,
// item 4: 8.5 to 13.6 s on main), and no survivor is announced failed.
func TestSilentHostLoss(t *testing.T) {
	const n = 8
	c := newCluster(t, n)
	agents := c.startAll(n)
	mustPoll(t, 60*time.Second, "8 agents to list each other", membersAre(agents, agents))
	lost := []*agentProc{c.agents[4], c.agents[7]}
	var survivors []*agentProc
	for _, p := range agents {
		if !slices.Contains(lost, p) {
			survivors = append(survivors, p)
		}
	}

	cutAt := time.Now()
	for _, p := range lost {
		c.lab.cut(p.index)
	}
	time.Sleep(500 * time.Millisecond) // the host dies after its links
	for _, p := range lost {
		p.kill()
	}
	gone := map[*agentProc]time.Duration{}
	_, ok, why := pollFrom(cutAt, 40*time.Second, func() (bool, string) {
		listed := map[*agentProc]string{}
		for _, o := range survivors {
			ids, err := o.memberIDs()
			if err != nil {
				return false, err.Error()
			}
			for _, p := range lost {
				if ids[p.state.ID] {
					listed[p] = o.name
				}
			}
		}
		for _, p := range lost {
			if _, still := listed[p]; !still {
				if _, seen := gone[p]; !seen {
					gone[p] = time.Since(cutAt)
				}
			}
		}
		if len(listed) > 0 {
			var parts []string
			for p, o := range listed {
				parts = append(parts, fmt.Sprintf("%s still lists %s", o, p.name))
			}
			slices.Sort(parts)
			return false, strings.Join(parts, ", ")
		}
		return true, ""
	})
	var figs []string
	for _, p := range lost {
		if d, ok := gone[p]; ok {
			figs = append(figs, fmt.Sprintf("%s %.2fs", p.name, d.Seconds()))
			if d > detectBound {
				t.Errorf("%s, lost without a reset, left every member list %.2fs after its links were cut, want ≤ %v", p.name, d.Seconds(), detectBound)
			}
		} else {
			figs = append(figs, fmt.Sprintf("%s never", p.name))
		}
	}
	report(t, "silent host dropped by every survivor after the cut", "%s", strings.Join(figs, ", "))
	if !ok {
		t.Errorf("lost hosts still listed 40s after the cut: %s", why)
	}
	requireStreams(t, survivors)
	wrong := falseFails(c, survivors, func(o, s *agentProc, at time.Time) bool { return slices.Contains(lost, s) && !at.Before(cutAt) })
	report(t, "fail events about survivors seen by survivors", "%s", summarize(wrong, cutAt, "the cut"))
	t.Run("no_false_deaths", func(t *testing.T) {
		if len(wrong) > 0 {
			t.Errorf("%d fail events about survivors: %s", len(wrong), summarize(wrong, cutAt, "the cut"))
		}
	})
}

// maxSeq returns the highest sequence number in counts (-1 if none).
func maxSeq(counts map[int]int) int {
	highest := -1
	for seq := range counts {
		highest = max(highest, seq)
	}
	return highest
}

// neighborsOf returns up to max agents that p lists as its overlay
// neighbours.
func neighborsOf(t *testing.T, p *agentProc, max int) []*agentProc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	members, err := p.client.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*agentProc
	for _, m := range members {
		if q := p.c.byID(m.ID); m.Neighbor && q != nil && q != p && len(out) < max {
			out = append(out, q)
		}
	}
	return out
}

func names(agents []*agentProc) string {
	var out []string
	for _, p := range agents {
		out = append(out, p.name)
	}
	return strings.Join(out, " ")
}
