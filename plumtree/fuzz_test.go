package plumtree

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/wire"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus of FuzzDecodeAndStep in testdata")

// fuzzSeeds are valid encodings of every message, written to the seed corpus
// in testdata/fuzz/FuzzDecodeAndStep and added by the fuzz target.
func fuzzSeeds(tb testing.TB) map[string][]byte {
	tb.Helper()
	seeds := map[string][]byte{}
	for name, msg := range map[string]any{
		"gossip":           &Gossip{ID: testID, Round: 2, Origin: origin, Payload: []byte("payload"), SentAt: simEpoch.UnixMilli()},
		"gossip-cached":    &Gossip{ID: MessageID{0xCC}, Round: 9, Origin: origin, Payload: []byte("again"), SentAt: simEpoch.UnixMilli()},
		"gossip-max-round": &Gossip{ID: MessageID{0xDD}, Round: 65535, Origin: origin, SentAt: simEpoch.UnixMilli()},
		"gossip-signed":    signedGossip(fuzzKey(tb), fuzzOrigin(tb), MessageID{0xAB}, "signed"),
		"summary":          &Summary{Entries: []SummaryEntry{{ID: testID, SentAt: simEpoch.UnixMilli()}, {ID: MessageID{0xCC}, SentAt: simEpoch.UnixMilli()}, {ID: MessageID{0xEF}, SentAt: simEpoch.UnixMilli() + 1}}},
		"ihave":            &IHave{Announcements: []Announcement{{ID: testID, Round: 1}, {ID: MessageID{0xCC}, Round: 1}}},
		"graft":            &Graft{IDs: []MessageID{MessageID{0xCC}, testID}},
		"graft-empty":      &Graft{},
		"prune":            &Prune{},
		"tree":             &Tree{Root: origin.ID, Distance: 3},
		"tree-parent":      &Tree{Root: peerA.ID, Distance: 0, Parent: true},
	} {
		data, err := wire.Marshal(msg)
		if err != nil {
			tb.Fatal(err)
		}
		seeds[name] = data
	}
	return seeds
}

func fuzzKey(tb testing.TB) *peer.Key { key, _ := testKey(tb, 0xF0); return key }

func fuzzOrigin(tb testing.TB) peer.Info { _, info := testKey(tb, 0xF0); return info }

// FuzzDecodeAndStep decodes arbitrary bytes with the wire codec and steps a
// core with the result, from a neighbour and from a stranger: nothing may
// panic, and the core's invariants must hold.
func FuzzDecodeAndStep(f *testing.F) {
	for _, data := range fuzzSeeds(f) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := wire.Unmarshal(data)
		if err != nil {
			return
		}
		// Half the inputs (by length) step cores that require origin
		// signatures, so that verification sees hostile input too.
		requireSignatures := len(data)%2 == 0
		for _, rootedTree := range []bool{false, true} {
			fuzzStep(t, msg, rootedTree, requireSignatures)
		}
	})
}

// fuzzStep steps a core (in the paper's mode or with a rooted tree) with
// msg from a neighbour and from a stranger and checks its invariants.
func fuzzStep(t *testing.T, msg any, rootedTree, requireSignatures bool) {
	{
		c := newTestCore(t, func(cfg *Config) {
			cfg.MaxPayload, cfg.OptimizationThreshold, cfg.RequireSignatures = 4096, 1, requireSignatures
			cfg.RootedTree = rootedTree
		}, peerA, peerB)
		c.Step(simEpoch, overlay.Received{From: peerA, Msg: &Tree{Root: peerA.ID}})
		c.Step(simEpoch, overlay.Received{From: peerB, Msg: &Prune{}})
		c.Step(simEpoch, overlay.Received{From: peerA, Msg: gossipFrom(MessageID{0xCC}, 3, "cached")})
		c.Step(simEpoch, overlay.Received{From: peerB, Msg: &IHave{Announcements: []Announcement{{ID: MessageID{0xEE}, Round: 1}}}})
		c.Drain(nil)
		now := simEpoch.Add(time.Millisecond)
		c.Step(now, overlay.Received{From: peerA, Msg: msg})
		c.Step(now, overlay.Received{From: peerB, Msg: msg})
		c.Step(now, overlay.Received{From: peerC, Msg: msg})
		for range 20 {
			deadline, ok := c.NextDeadline()
			if !ok {
				break
			}
			c.Step(deadline, overlay.Tick{})
		}
		outs := c.Drain(nil)
		if d := delivered(outs); len(d) > 1 {
			t.Fatalf("one message delivered %d times", len(d))
		}
		if eager, lazy := len(c.EagerPeers()), len(c.LazyPeers()); eager+lazy != 2 {
			t.Fatalf("%d eager and %d lazy peers, want the 2 neighbours", eager, lazy)
		}
		toStranger := 0
		for _, out := range outs {
			if s, ok := out.(overlay.Send); ok {
				if s.To.ID != peerA.ID && s.To.ID != peerB.ID {
					// The one thing a stranger may get: a rooted
					// tree's "no route through me", once.
					if tree, ok := s.Msg.(*Tree); !ok || !rootedTree || tree.Distance < MaxTreeDistance || toStranger > 0 {
						t.Fatalf("sent %T to %v, which is not a neighbour", s.Msg, s.To)
					}
					toStranger++
				}
				if _, err := wire.Marshal(s.Msg); err != nil {
					t.Fatalf("output %T does not encode: %v", s.Msg, err)
				}
			}
		}
	}
}

// The seed corpus on disk holds every seed; -update-corpus rewrites it.
func TestFuzzSeedCorpusIsComplete(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeAndStep")
	for name, data := range fuzzSeeds(t) {
		content := []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(data))))
		path := filepath.Join(dir, name)
		if *updateCorpus {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, content, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("seed %s missing (run go test -run TestFuzzSeedCorpusIsComplete -update-corpus): %v", name, err)
		}
		if !bytes.Equal(got, content) {
			t.Errorf("seed %s is stale (run go test -run TestFuzzSeedCorpusIsComplete -update-corpus)", name)
		}
	}
}
