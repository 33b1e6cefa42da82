package gossip

import (
	"testing"

	"pgregory.net/rapid"

	"github.com/p2p-go/p2p/wire"
	"github.com/p2p-go/p2p/wire/wiretest"
)

// directSeeds are encodings of DirectMessage in the preferred form and in
// forms only the reflective decoder reads or refuses.
func directSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	var seeds [][]byte
	for _, msg := range []*DirectMessage{{Topic: 1, Payload: []byte(`{"a":1}`)}, {}, {Topic: 255, Payload: []byte{}}} {
		data, err := wire.Marshal(msg)
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, data)
	}
	return append(seeds,
		[]byte{0x82, 0x19, 0x06, 0x01, 0x82, 0x18, 0x01, 0x40},       // topic 1 in two bytes
		[]byte{0x82, 0x19, 0x06, 0x01, 0x82, 0x19, 0x01, 0x00, 0x40}, // topic 256
		[]byte{0x82, 0x19, 0x06, 0x01, 0x82, 0xf6, 0x41, 0x00},       // null topic
		[]byte{0x82, 0x19, 0x06, 0x01, 0x82, 0x01, 0x42, 0x00},       // truncated payload
	)
}

// TestDirectCodecMatchesReflection checks the seeds both ways.
func TestDirectCodecMatchesReflection(t *testing.T) {
	for _, data := range directSeeds(t) {
		wiretest.CheckDecode(t, data)
		if msg, err := wire.Unmarshal(data); err == nil {
			wiretest.CheckEncode(t, msg)
		}
	}
	wiretest.CheckEncode(t, (*DirectMessage)(nil))
}

// FuzzDirectCodecMatchesReflection compares the hand-written decoder with
// the reflective one on arbitrary bytes.
func FuzzDirectCodecMatchesReflection(f *testing.F) {
	for _, seed := range directSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		wiretest.CheckDecode(t, data)
	})
}

// TestDirectCodecProperty encodes random messages both ways.
func TestDirectCodecProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		msg := &DirectMessage{Topic: rapid.Uint8().Draw(t, "topic"),
			Payload: rapid.OneOf(rapid.Just([]byte(nil)), rapid.SliceOf(rapid.Byte())).Draw(t, "payload")}
		wiretest.CheckEncode(t, msg)
	})
}
