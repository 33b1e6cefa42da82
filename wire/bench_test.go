package wire_test

import (
	"testing"

	"github.com/p2p-go/p2p/wire"
)

// BenchmarkUnmarshal decodes a message with a hand-written codec and one
// without, through Unmarshal (the fast path, or the envelope read once) and
// through UnmarshalReflective (the envelope decoded, its body copied, then
// decoded again). Package plumtree's BenchmarkCodec measures the protocol's
// own messages.
func BenchmarkUnmarshal(b *testing.B) {
	for _, m := range []struct {
		name string
		msg  any
	}{
		{"hand-written", &fastSample{Small: 3, Big: 1 << 40, Signed: -7, Name: "127.0.0.1:7000", Blob: make([]byte, 256),
			Items: []fastItem{{N: 1, Data: []byte("one")}, {N: 2, Data: []byte("two")}}}},
		{"reflective-body", &slowSample{N: 1 << 40, Words: []string{"127.0.0.1:7000", "two"}}},
	} {
		data, err := wire.Marshal(m.msg)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(m.name+"/Unmarshal", func(b *testing.B) {
			for b.Loop() {
				if _, err := wire.Unmarshal(data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(m.name+"/UnmarshalReflective", func(b *testing.B) {
			for b.Loop() {
				if _, err := wire.UnmarshalReflective(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMarshal encodes the same messages with Marshal, AppendMarshal
// into a reused buffer, and MarshalReflective.
func BenchmarkMarshal(b *testing.B) {
	msg := &fastSample{Small: 3, Big: 1 << 40, Signed: -7, Name: "127.0.0.1:7000", Blob: make([]byte, 256),
		Items: []fastItem{{N: 1, Data: []byte("one")}, {N: 2, Data: []byte("two")}}}
	b.Run("Marshal", func(b *testing.B) {
		for b.Loop() {
			if _, err := wire.Marshal(msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendMarshal", func(b *testing.B) {
		buf := make([]byte, 0, 1024)
		var err error
		for b.Loop() {
			if buf, err = wire.AppendMarshal(buf[:0], msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("MarshalReflective", func(b *testing.B) {
		for b.Loop() {
			if _, err := wire.MarshalReflective(msg); err != nil {
				b.Fatal(err)
			}
		}
	})
}
