//go:build !race

package kademlia

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/p2p-go/p2p/peer"
)

// The paper's claims at 2,000 nodes, on one simulated network built once:
// lookups find the true k closest, Gets find what Puts stored, a broadcast
// reaches everybody with N-1 messages, and records survive 20% of the nodes
// leaving abruptly once replication has run.
func TestPaperClaimsAt2000Nodes(t *testing.T) {
	const nodes = 2000
	start := time.Now()
	s := newSimNet(t, 2002)
	s.build(nodes)
	t.Logf("built %d nodes: %d messages (%.0f per join), %v virtual, %v real",
		nodes, s.messages(), float64(s.messages())/nodes, s.now().Sub(simEpoch).Round(time.Second), time.Since(start).Round(time.Millisecond))

	t.Run("Section2_3_LookupsReturnTheTrueKClosest", func(t *testing.T) {
		exact, hops, contacted := checkLookups(t, s, 1000)
		t.Logf("%d/1000 lookups exact; hops median %d p99 %d; requests median %d p99 %d",
			exact, percentile(hops, .5), percentile(hops, .99), percentile(contacted, .5), percentile(contacted, .99))
		if exact < 999 {
			t.Fatalf("%d of 1000 lookups returned the true k closest, want >= 99.9%%", exact)
		}
	})

	type stored struct {
		key   peer.ID
		value string
	}
	var records []stored
	t.Run("Section2_5_EveryGetFindsWhatAPutStored", func(t *testing.T) {
		for i := range 300 {
			from := s.randomAlive()
			value := fmt.Sprintf("config blob %d", i)
			rec := Record{Value: []byte(value)}
			if i%2 == 1 {
				rec.Name = []byte(fmt.Sprintf("service/%d", i))
			}
			res := s.put(from, rec)
			if res.Err != nil || res.Stored < 20 {
				t.Fatalf("put %d from node %d: stored %d, err %v", i, from, res.Stored, res.Err)
			}
			records = append(records, stored{res.Key, value})
		}
		for _, r := range records {
			from := s.randomAlive()
			res := s.get(from, r.key)
			if res.Err != nil || string(res.Record.Value) != r.value {
				t.Fatalf("get %s from node %d: %q, %v", r.key.Short(), from, res.Record.Value, res.Err)
			}
		}
	})

	t.Run("ElAnsary_BroadcastReachesEveryNodeWithAboutNMinus1Messages", func(t *testing.T) {
		delivered := map[int]int{}
		s.onDeliver = func(node int, d Deliver) { delivered[node]++ }
		defer func() { s.onDeliver = nil }()
		typ := reflect.TypeOf(&BroadcastMessage{})
		before := s.sent(typ)
		origin := s.randomAlive()
		s.step(origin, Broadcast{Payload: make([]byte, 256)})
		s.runFor(10 * time.Second)
		sent := s.sent(typ) - before
		missing := 0
		for i := range s.nodes {
			if i != origin && delivered[i] != 1 {
				missing++
			}
		}
		t.Logf("broadcast: %d messages for N-1 = %d, %d nodes missed or duplicated", sent, nodes-1, missing)
		if missing > 0 || sent > nodes-1+nodes/100 {
			t.Fatalf("%d nodes missed, %d messages", missing, sent)
		}
	})

	t.Run("Section2_5_GetsSurvive20PercentAbruptDeparturesAfterReplication", func(t *testing.T) {
		killed := s.kill(0.20, -1)
		before := s.messages()
		phase := time.Now()
		defer func() {
			var lookups, timeouts uint64
			for _, n := range s.nodes {
				lookups += n.core.stats.RPCsSent
				timeouts += n.core.stats.RPCTimeouts
			}
			t.Logf("churn phase: %d messages, %v real; all-time RPCs %d, timeouts %d; by type %v", s.messages()-before, time.Since(phase).Round(time.Millisecond), lookups, timeouts, s.sim.TypeStats())
		}()
		// One replication interval (plus its jitter) and some slack.
		s.runFor(DefaultReplicateInterval + DefaultReplicateInterval/10 + 5*time.Minute)
		// Replication restored K live copies of (almost) every record: without
		// it, about a fifth of each record's holders would be gone.
		restored := 0
		for _, r := range records {
			holders := 0
			for _, i := range s.alive() {
				if _, ok := s.nodes[i].core.StoredRecord(r.key); ok {
					holders++
				}
			}
			if holders >= DefaultK {
				restored++
			}
		}
		t.Logf("%d/%d records back on >= %d live holders", restored, len(records), DefaultK)
		if restored*100 < len(records)*99 {
			t.Fatalf("only %d of %d records restored to K live holders", restored, len(records))
		}
		ok := 0
		for _, r := range records {
			res := s.get(s.randomAlive(), r.key)
			if res.Err == nil && string(res.Record.Value) == r.value {
				ok++
			}
		}
		t.Logf("killed %d nodes; %d/%d gets succeeded after replication; %v real so far", len(killed), ok, len(records), time.Since(start).Round(time.Millisecond))
		if ok*100 < len(records)*99 {
			t.Fatalf("%d of %d gets succeeded, want >= 99%%", ok, len(records))
		}
	})
}
