package gossip

import (
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/plumtree"
	"github.com/p2p-go/p2p/wire"
)

// FuzzDecodeAndStep feeds arbitrary bytes through the wire codec into a
// joined core, without a key and with one (which checks signatures and
// introductions), as the runtime does with what a peer sends: nothing may
// panic, and the member list stays within its bound.
func FuzzDecodeAndStep(f *testing.F) {
	other := peer.Info{ID: peer.ID{9}, Addr: "node-9"}
	for _, msg := range []any{
		&DirectMessage{Topic: 1, Payload: []byte(`{"x":1}`)},
		&Probe{Nonce: 7},
		&ProbeReply{Nonce: 7},
		&Probe{Nonce: 8, Recent: []RecentBroadcast{{ID: plumtree.MessageID{1}, AgeMillis: 6000}}},
		&ProbeReply{Nonce: 8, Recent: []RecentBroadcast{{ID: plumtree.MessageID{2}, AgeMillis: 9000}}},
		&Probe{Nonce: 9, Claim: 1<<64 - 1},
		&Sync{Digest: make([]byte, 32)},
		&Sync{Digest: make([]byte, 8*maxBuckets)},
		&Sync{Digest: make([]byte, 24)}, // three buckets: refused
		&Sync{Full: true, Digest: make([]byte, 8*16), Entries: []Entry{{Peer: other, Incarnation: 7, State: StateAlive}}},
		&Sync{Full: true, Entries: []Entry{{Peer: other, Incarnation: 5, State: StateSuspect}}},
		&Sync{Full: true, Entries: []Entry{{Peer: other, Incarnation: 6, State: StateAlive, Name: "n", Tags: map[string]string{"k": "v"}, PublicKey: make([]byte, 32), Signature: make([]byte, 64)}}},
		&Sync{Full: true, Entries: []Entry{{Peer: other, Incarnation: 3, State: StateAlive}}},
		&Sync{Full: true, Reply: true, Entries: []Entry{{Peer: other, Incarnation: 4, State: StateDead}}},
		&Sync{Full: true, Entries: []Entry{{Peer: other, Incarnation: 6, State: StateAlive, PublicKey: make([]byte, 32), Signature: make([]byte, 64),
			Witnesses: []Witness{{By: peer.ID{2}, Signature: make([]byte, 64)}, {By: peer.ID{3}, Signature: make([]byte, 64)}}}}},
		&Vouch{Signature: make([]byte, 64)},
		&Vouch{},
	} {
		data, err := wire.Marshal(msg)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := wire.Unmarshal(data)
		if err != nil {
			return
		}
		for _, key := range []*peer.Key{nil, fuzzKey} {
			self := peer.Info{ID: peer.ID{1}, Addr: "node-1"}
			if key != nil {
				self.ID = key.ID()
			}
			c, err := New(Config{Self: self, Key: key, Seed: 1, MaxMembers: 64, JoinGrace: time.Nanosecond})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Unix(1_700_000_000, 0)
			c.Step(now, Join{})
			c.Step(now, overlay.Received{From: other, Msg: msg})
			c.Step(now.Add(time.Minute), overlay.Tick{})
			c.Drain(nil)
			if c.members.len() > 64 {
				t.Fatalf("member list grew to %d, bound 64", c.members.len())
			}
		}
	})
}

// fuzzKey is the keyed fuzz core's key.
var fuzzKey, _ = peer.KeyFromSeed(make([]byte, 32))
