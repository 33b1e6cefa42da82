package gossip

import (
	"fmt"
	"testing"
	"time"
)

// falseDeaths records, after the moment it is armed, every failure a node
// announces about a member on its own side of a partition: a member that
// stayed reachable from it the whole time.
type falseDeaths struct {
	net    *testNet
	side   map[int]int // node index -> side
	armed  bool
	events []string
}

func (f *falseDeaths) record(n *testNode, out any) {
	d, ok := out.(MemberDown)
	if !ok || d.Left || !f.armed {
		return
	}
	subject := f.net.byID[d.Peer.ID]
	if subject != nil && subject.alive() && f.side[subject.index] == f.side[n.index] {
		f.events = append(f.events, fmt.Sprintf("node %d announced node %d failed at %v", n.index, subject.index, f.net.now.Format("15:04:05.000")))
	}
}

// TestReachableMemberNeverAnnouncedFailedAfterPartitionHeals is the invariant
// of Lifeguard's suspicion (and issue 9's first point): after a half/half
// partition long enough for each side to declare the other dead, the heal
// brings each side's dead claims about the other to this side; a node must
// not announce as failed a member it can still reach. Dead claims made by
// the other side become suspicions, which their subjects refute.
func TestReachableMemberNeverAnnouncedFailedAfterPartitionHeals(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed", 21+seed), func(t *testing.T) {
			net, _ := settledNet(t, 20, 21+seed)
			a, b := net.nodes[:10], net.nodes[10:]
			f := &falseDeaths{net: net, side: map[int]int{}}
			for _, n := range b {
				f.side[n.index] = 1
			}
			net.onOutput = f.record
			f.armed = true
			net.partition(a, b)
			if took, ok := net.runUntil(time.Minute, func() bool { return len(a[0].core.Members()) == 10 && len(b[0].core.Members()) == 10 }); !ok {
				t.Fatalf("sides did not notice the partition after %v", took)
			}
			net.run(30 * time.Second)
			net.heal()
			took, ok := net.runUntil(5*time.Minute, func() bool { return net.connected() && allMembersKnown(net) })
			if !ok {
				t.Fatalf("not healed after %v", took)
			}
			net.run(time.Minute)
			if len(f.events) > 0 {
				t.Fatalf("%d failures announced about members that stayed reachable, first: %v", len(f.events), f.events[:min(5, len(f.events))])
			}
			t.Logf("healed %v after the partition ended, no reachable member announced failed", took)
		})
	}
}

// TestReachableMemberNeverAnnouncedFailedAfterIsolationHeals isolates one
// node long enough for it to declare every other member dead, then heals:
// its dead claims reach the others, which must not act on them.
func TestReachableMemberNeverAnnouncedFailedAfterIsolationHeals(t *testing.T) {
	net, _ := settledNet(t, 20, 31)
	lone := net.nodes[7]
	var rest []*testNode
	for _, n := range net.nodes {
		if n != lone {
			rest = append(rest, n)
		}
	}
	f := &falseDeaths{net: net, side: map[int]int{lone.index: 1}}
	net.onOutput = f.record
	f.armed = true
	net.partition([]*testNode{lone}, rest)
	net.run(35 * time.Second)
	net.heal()
	if took, ok := net.runUntil(5*time.Minute, func() bool { return net.connected() && allMembersKnown(net) }); !ok {
		t.Fatalf("not healed after %v", took)
	}
	net.run(time.Minute)
	if len(f.events) > 0 {
		t.Fatalf("%d failures announced about members that stayed reachable, first: %v", len(f.events), f.events[:min(5, len(f.events))])
	}
}

// TestMemberSlowToAnswerButRefutingIsNotAnnouncedFailed: a member whose
// probe replies are all lost (a loaded machine, say) but which hears the
// SUSPECT claims about it and refutes them is alive; the nodes whose probes
// of it went unanswered must not announce it failed on the strength of
// probes started before its refutation.
func TestMemberSlowToAnswerButRefutingIsNotAnnouncedFailed(t *testing.T) {
	net, _ := settledNet(t, 20, 71)
	slow := net.nodes[11]
	net.drop = func(from, _ *testNode, msg any) bool {
		_, reply := msg.(*ProbeReply)
		return from == slow && reply
	}
	downs := 0
	net.onOutput = func(n *testNode, out any) {
		if d, ok := out.(MemberDown); ok && d.Peer.ID == slow.info.ID {
			downs++
		}
	}
	net.run(2 * time.Minute)
	var sent, refutations uint64
	for _, n := range net.alive() {
		sent += n.core.Stats().ProbesSent
	}
	refutations = slow.core.Stats().Refutations
	if refutations == 0 {
		t.Fatalf("the slow member never refuted (%d probes sent in all): the test shows nothing", sent)
	}
	if downs != 0 {
		t.Fatalf("the slow member, which refuted %d claims, was announced failed %d times", refutations, downs)
	}
	t.Logf("%d refutations, no failure announced", refutations)
}

// TestLostProbeRepliesRaiseNoClaim loses every other probe reply from each
// member to each prober, as random message loss would now and then: a random probe left
// unanswered once is probed again, and the answer to the second comes. No
// SUSPECT claim may be broadcast (each false claim costs the network two
// broadcasts, the claim and its refutation; with 1 % loss they doubled the
// simulator's traffic at 1,000 nodes) and no member announced failed.
func TestLostProbeRepliesRaiseNoClaim(t *testing.T) {
	net, _ := settledNet(t, 20, 83)
	replies := map[[2]*testNode]int{}
	net.drop = func(from, to *testNode, msg any) bool {
		if _, ok := msg.(*ProbeReply); !ok {
			return false
		}
		replies[[2]*testNode{from, to}]++
		return replies[[2]*testNode{from, to}]%2 == 1
	}
	var downs int
	net.onOutput = func(_ *testNode, out any) {
		if _, ok := out.(MemberDown); ok {
			downs++
		}
	}
	before := map[*testNode]Stats{}
	for _, n := range net.alive() {
		before[n] = n.core.Stats()
	}
	net.run(time.Minute)
	var retries, suspicions, refutations uint64
	for _, n := range net.alive() {
		s := n.core.Stats()
		retries += s.SilentRetries - before[n].SilentRetries
		suspicions += s.Suspicions - before[n].Suspicions
		refutations += s.Refutations - before[n].Refutations
	}
	if retries == 0 {
		t.Fatal("no probe was retried: the test shows nothing")
	}
	if suspicions != 0 || refutations != 0 || downs != 0 {
		t.Fatalf("%d retries, yet %d suspicions, %d refutations, %d members announced failed", retries, suspicions, refutations, downs)
	}
	t.Logf("%d probes retried, no claim", retries)
}
