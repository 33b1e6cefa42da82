package plumtree

import (
	"testing"

	"github.com/p2p-go/p2p/wire"
)

// BenchmarkCodec encodes and decodes the hot messages, a signed GOSSIP with a
// 256-byte payload and an IHAVE of 8 announcements, by reflection (the codec
// before the hand-written one) and with the hand-written codec: Marshal
// (a new slice per message), AppendMarshal into a reused buffer, and
// Unmarshal.
func BenchmarkCodec(b *testing.B) {
	key, info := testKey(b, 0xF0)
	gossip := signedGossip(key, info, MessageID{0xAB, 1}, string(make([]byte, 256)))
	gossip.Round = 3
	ihave := &IHave{}
	for i := range 8 {
		ihave.Announcements = append(ihave.Announcements, Announcement{ID: MessageID{0xAB, byte(i)}, Round: uint16(i + 1)})
	}
	for _, m := range []struct {
		name string
		msg  any
	}{{"gossip-256", gossip}, {"ihave-8", ihave}} {
		data, err := wire.Marshal(m.msg)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(m.name+"/encode/reflective", func(b *testing.B) {
			for b.Loop() {
				if _, err := wire.MarshalReflective(m.msg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(m.name+"/encode/fast", func(b *testing.B) {
			for b.Loop() {
				if _, err := wire.Marshal(m.msg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(m.name+"/encode/fast-append", func(b *testing.B) {
			buf := make([]byte, 0, 1024)
			for b.Loop() {
				if buf, err = wire.AppendMarshal(buf[:0], m.msg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(m.name+"/decode/reflective", func(b *testing.B) {
			for b.Loop() {
				if _, err := wire.UnmarshalReflective(data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(m.name+"/decode/fast", func(b *testing.B) {
			for b.Loop() {
				if _, err := wire.Unmarshal(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
