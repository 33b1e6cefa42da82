package kademlia

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/p2p-go/p2p/peer"
)

// genIDNear draws an ID sharing a small, drawn number of leading bits with
// self, so that a few buckets fill up and overflow.
func genIDNear(self peer.ID, maxPrefix int) *rapid.Generator[peer.ID] {
	return rapid.Custom(func(t *rapid.T) peer.ID {
		prefix := rapid.IntRange(0, maxPrefix).Draw(t, "prefix")
		var id peer.ID
		for i := range id {
			id[i] = byte(rapid.IntRange(0, 255).Draw(t, fmt.Sprint("byte", i)))
		}
		for b := range prefix {
			if bit(id, b) != bit(self, b) {
				id = flipBit(id, b)
			}
		}
		if bit(id, prefix) == bit(self, prefix) {
			id = flipBit(id, prefix)
		}
		return id
	})
}

// checkTableInvariants verifies what section 2.2 of the paper requires of
// k-buckets.
func checkTableInvariants(t *rapid.T, tb *table) {
	seen := map[peer.ID]bool{}
	total := 0
	for i, b := range tb.buckets {
		if b == nil {
			continue
		}
		if len(b.contacts) > tb.k {
			t.Fatalf("bucket %d holds %d contacts, capacity %d", i, len(b.contacts), tb.k)
		}
		if len(b.replacements) > tb.replacementSize {
			t.Fatalf("bucket %d has %d replacements, limit %d", i, len(b.replacements), tb.replacementSize)
		}
		for j, c := range b.contacts {
			if got := CommonPrefixLen(tb.self, c.info.ID); got != i {
				t.Fatalf("contact %s with prefix length %d in bucket %d", c.info.ID.Short(), got, i)
			}
			if seen[c.info.ID] {
				t.Fatalf("contact %s twice", c.info.ID.Short())
			}
			seen[c.info.ID] = true
			if j > 0 && c.lastSeen.Before(b.contacts[j-1].lastSeen) {
				t.Fatalf("bucket %d not in least-recently-seen order at %d", i, j)
			}
			total++
		}
		for _, r := range b.replacements {
			if b.find(r.info.ID) >= 0 {
				t.Fatalf("replacement %s is also a contact", r.info.ID.Short())
			}
		}
	}
	if total != tb.size {
		t.Fatalf("size %d, counted %d", tb.size, total)
	}
}

func TestRoutingTableProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var self peer.ID
		self[0] = byte(rapid.IntRange(0, 255).Draw(t, "self0"))
		self[31] = byte(rapid.IntRange(0, 255).Draw(t, "self31"))
		k := rapid.IntRange(1, 6).Draw(t, "k")
		probeAfter := time.Minute
		tb := newTable(self, k, 3, 2, probeAfter)
		now := simEpoch
		tb.created = now
		ids := genIDNear(self, 4)
		var known []peer.ID

		t.Repeat(map[string]func(*rapid.T){
			"seen": func(t *rapid.T) {
				var id peer.ID
				if len(known) > 0 && rapid.Bool().Draw(t, "again") {
					id = rapid.SampledFrom(known).Draw(t, "known")
				} else {
					id = ids.Draw(t, "new")
					known = append(known, id)
				}
				now = now.Add(time.Duration(rapid.IntRange(0, 120).Draw(t, "seconds")) * time.Second)
				i := tb.bucketIndex(id)
				var before []contact
				if b := tb.buckets[i]; b != nil {
					before = slices.Clone(b.contacts)
				}
				wasIn := slices.ContainsFunc(before, func(c contact) bool { return c.info.ID == id })
				probing := tb.buckets[i] != nil && !tb.buckets[i].probing.IsZero()
				probe := tb.seen(peer.Info{ID: id, Addr: "x"}, now)
				b := tb.buckets[i]
				last := b.contacts[len(b.contacts)-1].info.ID
				switch {
				case wasIn || len(before) < k:
					// Known contacts move to the tail; new ones join
					// it while there is room.
					if last != id {
						t.Fatalf("contact %s not at the tail after being seen", id.Short())
					}
				case slices.ContainsFunc(before, func(c contact) bool { return c.failures >= 2 }):
					// A stale contact makes room at once.
					if last != id {
						t.Fatalf("newcomer did not replace a stale contact")
					}
				default:
					// Full bucket: the newcomer waits, and the least
					// recently seen contact is probed if silent long.
					if b.find(id) >= 0 {
						t.Fatalf("newcomer %s evicted a live contact without a PING", id.Short())
					}
					if b.findReplacement(id) < 0 {
						t.Fatalf("newcomer %s not in the replacement cache", id.Short())
					}
					wantProbe := !probing && now.Sub(before[0].lastSeen) >= probeAfter
					if wantProbe != (probe.ID == before[0].info.ID) {
						t.Fatalf("probe %s, want probe of the LRS contact: %v", probe.ID.Short(), wantProbe)
					}
				}
			},
			"failed": func(t *rapid.T) {
				if len(known) == 0 {
					t.Skip()
				}
				tb.failed(rapid.SampledFrom(known).Draw(t, "id"))
			},
			"probeFailed": func(t *rapid.T) {
				if len(known) == 0 {
					t.Skip()
				}
				id := rapid.SampledFrom(known).Draw(t, "id")
				i := tb.bucketIndex(id)
				wasIn := tb.get(id) != nil
				var repl int
				if tb.buckets[i] != nil {
					repl = len(tb.buckets[i].replacements)
				}
				size := tb.size
				tb.probeFailed(id)
				if tb.get(id) != nil {
					t.Fatalf("contact %s still present after failing its PING", id.Short())
				}
				if wasIn && repl > 0 && tb.size != size {
					t.Fatalf("evicted contact not replaced from the cache (size %d -> %d)", size, tb.size)
				}
			},
			"closest": func(t *rapid.T) {
				var target peer.ID
				if rapid.Bool().Draw(t, "nearSelf") {
					target = ids.Draw(t, "target")
				} else {
					for i := range target {
						target[i] = byte(rapid.IntRange(0, 255).Draw(t, fmt.Sprint("t", i)))
					}
				}
				n := rapid.IntRange(1, 30).Draw(t, "n")
				var all []peer.ID
				tb.forEach(func(_ int, c *contact) { all = append(all, c.info.ID) })
				slices.SortFunc(all, func(a, b peer.ID) int { return compareDistance(target, a, b) })
				want := all[:min(n, len(all))]
				got := tb.closest(target, n, false)
				if len(got) != len(want) {
					t.Fatalf("closest returned %d, want %d", len(got), len(want))
				}
				for i := range got {
					if got[i].ID != want[i] {
						t.Fatalf("closest[%d] = %s, want %s", i, got[i].ID.Short(), want[i].Short())
					}
				}
			},
			"": func(t *rapid.T) { checkTableInvariants(t, tb) },
		})
	})
}

func TestClosestToSelfOrdersDeepestBucketsFirst(t *testing.T) {
	self := peer.ID{0x80}
	tb := newTable(self, 20, 4, 3, time.Minute)
	for _, first := range []byte{0x00, 0xc0, 0xa0, 0x90, 0x81} {
		tb.seen(peer.Info{ID: peer.ID{first}, Addr: "x"}, simEpoch)
	}
	got := tb.closest(self, 10, false)
	want := []byte{0x81, 0x90, 0xa0, 0xc0, 0x00}
	for i, info := range got {
		if info.ID[0] != want[i] {
			t.Fatalf("closest to self: position %d is %#x, want %#x", i, info.ID[0], want[i])
		}
	}
}

func TestDistanceHelpers(t *testing.T) {
	a, b := peer.ID{0xf0}, peer.ID{0xf8}
	if got := CommonPrefixLen(a, b); got != 4 {
		t.Fatalf("CommonPrefixLen = %d, want 4", got)
	}
	if got := CommonPrefixLen(a, a); got != IDBits {
		t.Fatalf("CommonPrefixLen(a, a) = %d", got)
	}
	if d := Distance(a, b); d[0] != 0x08 {
		t.Fatalf("Distance = %x", d[:2])
	}
	if !Closer(a, a, b) || Closer(a, b, a) || Closer(a, a, a) {
		t.Fatal("Closer misorders")
	}
}
