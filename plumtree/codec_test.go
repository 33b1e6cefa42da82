package plumtree

import (
	"math"
	"testing"

	"pgregory.net/rapid"

	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/wire"
	"github.com/p2p-go/p2p/wire/wiretest"
)

// codecSeeds are encodings of every message with a hand-written codec, in
// the preferred form and in forms only the reflective decoder reads (or
// refuses), for the differential fuzz target.
func codecSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	var seeds [][]byte
	for _, data := range fuzzSeeds(tb) {
		seeds = append(seeds, data)
	}
	id := func(b byte) []byte { return append([]byte{0x50, b}, make([]byte, 15)...) }
	info := append(append([]byte{0x82, 0x58, 0x20}, make([]byte, 32)...), 0x63, 'a', ':', '1')
	gossip := func(round []byte, payload []byte) []byte {
		out := []byte{0x82, 0x19, 0x02, 0x01, 0x87}
		out = append(out, id(1)...)
		out = append(out, round...)
		out = append(out, info...)
		out = append(out, payload...)
		return append(out, 0x01, 0xf6, 0xf6)
	}
	return append(seeds,
		gossip([]byte{0x02}, []byte{0x40}),                                               // preferred form
		gossip([]byte{0x18, 0x02}, []byte{0x40}),                                         // round 2 in two bytes
		gossip([]byte{0xf6}, []byte{0x40}),                                               // null round
		gossip([]byte{0x1a, 0, 1, 0, 0}, []byte{0x40}),                                   // round over 65535
		gossip([]byte{0x02}, []byte{0x5f, 0x41, 1, 0xff}),                                // indefinite payload
		gossip([]byte{0x02}, []byte{0xc2, 0x40}),                                         // tagged payload
		append([]byte{0x82, 0x19, 0x02, 0x02, 0x81, 0x81, 0x82}, append(id(3), 0x00)...), // IHAVE with round 0
		append([]byte{0x82, 0x19, 0x02, 0x02, 0x81, 0x81, 0x82}, append(id(3), 0x19, 0x00, 0x01)...),
		append([]byte{0x82, 0x19, 0x02, 0x03, 0x81, 0x82}, append(id(4), id(5)[:10]...)...), // truncated GRAFT
		[]byte{0x82, 0x19, 0x02, 0x03, 0x81, 0xf6},                                          // GRAFT with null IDs
		[]byte{0x82, 0x19, 0x02, 0x04, 0x80, 0x00},                                          // PRUNE and extra bytes
		[]byte{0x82, 0x19, 0x02, 0x04, 0xf6},                                                // null PRUNE
		[]byte{0x82, 0x19, 0x02, 0x05, 0x81, 0x81, 0x82, 0x50, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	)
}

// TestCodecMatchesReflection checks the hand-written codecs on the seeds.
func TestCodecMatchesReflection(t *testing.T) {
	for _, data := range codecSeeds(t) {
		wiretest.CheckDecode(t, data)
		if msg, err := wire.Unmarshal(data); err == nil {
			wiretest.CheckEncode(t, msg)
		}
	}
	for _, msg := range []any{(*Gossip)(nil), (*IHave)(nil), (*Graft)(nil), (*Prune)(nil), (*Summary)(nil),
		&IHave{}, &IHave{Announcements: []Announcement{}}, &Graft{IDs: []MessageID{}}, &Summary{Entries: []SummaryEntry{}},
		&Gossip{Payload: []byte{}, PublicKey: []byte{}, Origin: peer.Info{Addr: "\xff"}, SentAt: math.MinInt64}} {
		wiretest.CheckEncode(t, msg)
	}
}

// TestGossipDecodeSharesOneArray checks that the payload, public key and
// signature of a decoded GOSSIP cannot overwrite one another.
func TestGossipDecodeSharesOneArray(t *testing.T) {
	data, err := wire.Marshal(&Gossip{ID: testID, Round: 1, Origin: origin, Payload: []byte("pay"), PublicKey: []byte("key"), Signature: []byte("sig")})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := wire.Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	g := msg.(*Gossip)
	_ = append(g.Payload, 'X')
	_ = append(g.PublicKey, 'Y')
	if string(g.Payload) != "pay" || string(g.PublicKey) != "key" || string(g.Signature) != "sig" {
		t.Fatalf("fields overlap: %q %q %q", g.Payload, g.PublicKey, g.Signature)
	}
	for i := range data {
		data[i] = 0 // the decoded message must not point into the frame
	}
	if string(g.Payload) != "pay" || g.Origin != origin {
		t.Fatalf("decoded message shares the input: %q %v", g.Payload, g.Origin)
	}
}

// FuzzCodecMatchesReflection compares the hand-written decoders with the
// reflective one on arbitrary bytes: same inputs accepted, same values.
func FuzzCodecMatchesReflection(f *testing.F) {
	for _, seed := range codecSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		wiretest.CheckDecode(t, data)
	})
}

// FuzzGossipEncodeMatchesReflection compares the hand-written encoders with
// the reflective one on arbitrary GOSSIP, IHAVE and GRAFT messages.
func FuzzGossipEncodeMatchesReflection(f *testing.F) {
	f.Add([]byte("id"), uint16(1), []byte("origin"), "127.0.0.1:7000", []byte("payload"), int64(1700000000000), []byte{}, []byte(nil), uint8(3))
	f.Add([]byte(nil), uint16(65535), []byte(nil), "\xff\xfe", []byte(nil), int64(-1), []byte(nil), []byte{1}, uint8(0))
	f.Fuzz(func(t *testing.T, id []byte, round uint16, originID []byte, addr string, payload []byte, sentAt int64,
		publicKey, signature []byte, count uint8) {
		g := &Gossip{Round: round, Origin: peer.Info{Addr: addr}, Payload: payload, SentAt: sentAt, PublicKey: publicKey, Signature: signature}
		copy(g.ID[:], id)
		copy(g.Origin.ID[:], originID)
		wiretest.CheckEncode(t, g)
		ihave, graft := &IHave{}, &Graft{}
		if count > 0 {
			ihave.Announcements, graft.IDs = []Announcement{}, []MessageID{}
			for i := range int(count) - 1 {
				next := g.ID
				next[0] += byte(i)
				ihave.Announcements = append(ihave.Announcements, Announcement{ID: next, Round: round + uint16(i)})
				graft.IDs = append(graft.IDs, next)
			}
		}
		wiretest.CheckEncode(t, ihave)
		wiretest.CheckEncode(t, graft)
	})
}

// TestCodecProperty encodes random messages with both encoders, and decodes
// random mutations of their encodings with both decoders.
func TestCodecProperty(t *testing.T) {
	bytesOrNil := func(max int) *rapid.Generator[[]byte] {
		return rapid.OneOf(rapid.Just([]byte(nil)), rapid.SliceOfN(rapid.Byte(), 0, max))
	}
	messageID := rapid.Custom(func(t *rapid.T) (id MessageID) {
		copy(id[:], rapid.SliceOfN(rapid.Byte(), MessageIDLen, MessageIDLen).Draw(t, "id"))
		return id
	})
	round := rapid.OneOf(rapid.Uint16Range(0, 30), rapid.Uint16())
	messages := rapid.OneOf(
		rapid.Custom(func(t *rapid.T) any {
			g := &Gossip{ID: messageID.Draw(t, "id"), Round: round.Draw(t, "round"),
				Origin:  peer.Info{Addr: rapid.String().Draw(t, "addr")},
				Payload: bytesOrNil(300).Draw(t, "payload"), SentAt: rapid.Int64().Draw(t, "sentAt"),
				PublicKey: bytesOrNil(32).Draw(t, "publicKey"), Signature: bytesOrNil(64).Draw(t, "signature")}
			copy(g.Origin.ID[:], rapid.SliceOfN(rapid.Byte(), peer.IDLen, peer.IDLen).Draw(t, "origin"))
			return g
		}),
		rapid.Custom(func(t *rapid.T) any {
			announcements := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) Announcement {
				return Announcement{ID: messageID.Draw(t, "id"), Round: round.Draw(t, "round")}
			}), 0, 10).Draw(t, "announcements")
			if rapid.Bool().Draw(t, "nil") {
				announcements = nil
			}
			return &IHave{Announcements: announcements}
		}),
		rapid.Custom(func(t *rapid.T) any {
			ids := rapid.SliceOfN(messageID, 0, 10).Draw(t, "ids")
			if rapid.Bool().Draw(t, "nil") {
				ids = nil
			}
			return &Graft{IDs: ids}
		}),
		rapid.Just[any](&Prune{}),
		rapid.Custom(func(t *rapid.T) any {
			entries := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) SummaryEntry {
				return SummaryEntry{ID: messageID.Draw(t, "id"), SentAt: rapid.Int64().Draw(t, "sentAt")}
			}), 0, 10).Draw(t, "entries")
			return &Summary{Entries: entries}
		}),
	)
	rapid.Check(t, func(t *rapid.T) {
		msg := messages.Draw(t, "msg")
		wiretest.CheckEncode(t, msg)
		data, err := wire.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		for range 4 {
			mutated := append([]byte(nil), data...)
			for range rapid.IntRange(1, 3).Draw(t, "mutations") {
				at := rapid.IntRange(0, len(mutated)-1).Draw(t, "at")
				switch rapid.IntRange(0, 2).Draw(t, "kind") {
				case 0:
					mutated[at] = rapid.Byte().Draw(t, "byte")
				case 1:
					mutated = append(mutated[:at], append([]byte{rapid.Byte().Draw(t, "inserted")}, mutated[at:]...)...)
				default:
					if len(mutated) > 1 {
						mutated = append(mutated[:at], mutated[at+1:]...)
					}
				}
			}
			wiretest.CheckDecode(t, mutated)
		}
	})
}
