package plumtree

import (
	"bytes"
	"testing"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
)

// Issue 10: optional origin signatures. With RequireSignatures a node
// delivers and relays only broadcasts signed by their origin's own key.

// testKey returns a key derived from b, and the peer it is the identity of.
func testKey(t testing.TB, b byte) (*peer.Key, peer.Info) {
	t.Helper()
	key, err := peer.KeyFromSeed(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return key, peer.Info{ID: key.ID(), Addr: "10.9.9." + string('0'+rune(b%10)) + ":7946"}
}

// signedGossip returns a GOSSIP that origin (whose key is key) signed.
func signedGossip(key *peer.Key, origin peer.Info, id MessageID, payload string) *Gossip {
	g := &Gossip{ID: id, Round: 1, Origin: origin, Payload: []byte(payload), SentAt: simEpoch.UnixMilli()}
	g.PublicKey = key.Public()
	g.Signature = key.Sign(signedBytes(g))
	return g
}

// Every node signs and requires signatures: broadcasts reach every node,
// and the copies relayed keep the origin's signature.
func TestSignedBroadcastsReachEveryNode(t *testing.T) {
	net := newSimNetwork(t, simOptions{nodes: 30, degree: 4, seed: 4, config: func(i int, cfg *Config) {
		key, info := testKey(t, byte(i+1))
		cfg.Self, cfg.SigningKey, cfg.RequireSignatures = info, key, true
	}})
	for k := range 5 {
		id := net.broadcast(k*5, MessageID{}, payload256)
		net.settle()
		if r := net.report(id); r.delivered != r.receivers || r.duplicates != 0 {
			t.Fatalf("message %d: delivered to %d of %d, %d duplicates", k, r.delivered, r.receivers, r.duplicates)
		}
	}
	for _, n := range net.nodes {
		if st := n.core.Stats(); st.RefusedSignature != 0 {
			t.Fatalf("node %d refused %d genuine messages", n.index, st.RefusedSignature)
		}
	}
}

// A relay cannot forge what a signed message says: a changed payload,
// origin address, send time or ID, a message signed by another key that
// claims the origin, and an unsigned one are refused, neither delivered nor
// relayed, and counted; the genuine message is still delivered afterwards
// (a forgery does not poison the seen cache).
func TestForgedBroadcastsAreRefusedWhenSignaturesAreRequired(t *testing.T) {
	originKey, origin := testKey(t, 1)
	otherKey, _ := testKey(t, 2)
	genuine := func() *Gossip { return signedGossip(originKey, origin, testID, "token=4") }
	for _, tc := range []struct {
		name   string
		forged func() *Gossip
	}{
		{"payload changed", func() *Gossip { g := genuine(); g.Payload = []byte("token=5"); return g }},
		{"origin address changed", func() *Gossip { g := genuine(); g.Origin.Addr = "10.6.6.6:1"; return g }},
		{"send time changed", func() *Gossip { g := genuine(); g.SentAt++; return g }},
		{"another key claiming the origin", func() *Gossip {
			g := genuine()
			g.PublicKey, g.Signature = otherKey.Public(), otherKey.Sign(signedBytes(g))
			return g
		}},
		{"unsigned", func() *Gossip { g := genuine(); g.PublicKey, g.Signature = nil, nil; return g }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCore(t, func(cfg *Config) { cfg.RequireSignatures = true }, peerA, peerB)
			c.Step(simEpoch, overlay.Received{From: peerA, Msg: tc.forged()})
			if outs := c.Drain(nil); len(outs) != 0 {
				t.Fatalf("forged message produced %v", outs)
			}
			if st := c.Stats(); st.RefusedSignature != 1 || st.Delivered != 0 {
				t.Fatalf("stats %+v: want 1 signature refusal", st)
			}
			c.Step(simEpoch, overlay.Received{From: peerB, Msg: genuine()})
			outs := c.Drain(nil)
			if d := delivered(outs); len(d) != 1 || string(d[0].Payload) != "token=4" {
				t.Fatalf("genuine message after the forgery: deliveries %+v", d)
			}
			if fw := sentTo[*Gossip](outs, peerA); len(fw) != 1 || !verifiedOrigin(fw[0]) {
				t.Fatalf("genuine message relayed as %+v, want its signature kept", fw)
			}
		})
	}
}

// Signatures are off by default: unsigned broadcasts are accepted, and a
// node that signs can talk to one that does not verify.
func TestUnsignedBroadcastsAreAcceptedByDefault(t *testing.T) {
	c := newTestCore(t, nil, peerA)
	c.Step(simEpoch, overlay.Received{From: peerA, Msg: gossipFrom(testID, 1, "x")})
	if len(delivered(c.Drain(nil))) != 1 {
		t.Fatal("unsigned message not delivered with signatures off")
	}
	key, self := testKey(t, 3)
	signer, err := New(Config{Self: self, SigningKey: key})
	if err != nil {
		t.Fatal(err)
	}
	signer.Step(simEpoch, NeighborUp{Peer: peerA})
	signer.Step(simEpoch, Broadcast{Payload: []byte("signed")})
	sent := sentTo[*Gossip](signer.Drain(nil), peerA)
	if len(sent) != 1 || !verifiedOrigin(sent[0]) {
		t.Fatalf("broadcast of a signing node: %+v, want one signed GOSSIP", sent)
	}
	if _, err := New(Config{Self: selfInfo, SigningKey: key}); err == nil {
		t.Fatal("New accepted a SigningKey that is not Self's")
	}
}

// BenchmarkReceiveGossip measures what the core spends on one new 256-byte
// GOSSIP from a neighbour (delivery, relay to two neighbours, caches), with
// and without the origin signature check, and what signing costs the origin
// per broadcast (sub-benchmark sign).
func BenchmarkReceiveGossip(b *testing.B) {
	key, origin := testKey(b, 7)
	for _, require := range []bool{false, true} {
		b.Run(map[bool]string{false: "unsigned", true: "signed-verified"}[require], func(b *testing.B) {
			c := newTestCore(b, func(cfg *Config) { cfg.RequireSignatures = require }, peerA, peerB, peerC)
			msgs := make([]*Gossip, 4096)
			for i := range msgs {
				g := &Gossip{ID: MessageID{byte(i), byte(i >> 8), 0xB}, Round: 1, Origin: origin, Payload: payload256, SentAt: simEpoch.UnixMilli()}
				if require {
					g.PublicKey, g.Signature = key.Public(), key.Sign(signedBytes(g))
				}
				msgs[i] = g
			}
			now := simEpoch
			var outs []any
			b.ResetTimer()
			i := 0
			for b.Loop() {
				g := msgs[i%len(msgs)]
				if i > 0 && i%len(msgs) == 0 {
					// Reuse the IDs once the seen cache has forgotten them,
					// with new send times (signed again): not measured.
					b.StopTimer()
					now = now.Add(DefaultSeenTTL + time.Second)
					for _, m := range msgs {
						m.SentAt = now.UnixMilli()
						if require {
							m.Signature = key.Sign(signedBytes(m))
						}
					}
					b.StartTimer()
				}
				c.Step(now, overlay.Received{From: peerA, Msg: g})
				outs = c.Drain(outs[:0])
				i++
			}
			if c.Stats().RefusedSignature != 0 {
				b.Fatalf("%d genuine messages refused", c.Stats().RefusedSignature)
			}
		})
	}
	b.Run("sign", func(b *testing.B) {
		c := newTestCore(b, func(cfg *Config) { cfg.Self, cfg.SigningKey = origin, key }, peerA)
		g := &Gossip{ID: testID, Round: 1, Origin: origin, Payload: payload256, SentAt: simEpoch.UnixMilli()}
		for b.Loop() {
			c.sign(g)
		}
	})
}
