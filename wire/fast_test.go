package wire_test

import (
	"math"
	"testing"

	"pgregory.net/rapid"

	"github.com/p2p-go/p2p/wire"
	"github.com/p2p-go/p2p/wire/wiretest"
)

// fastSample has a field of every kind the Append functions and the Reader
// handle, and a hand-written codec built with them: the tests below hold it
// to the reflective codec, as the protocols' tests hold their own.
type fastSample struct {
	_      struct{} `cbor:",toarray"`
	Small  uint16
	Big    uint64
	Signed int64
	Name   string
	Blob   []byte
	Key    [4]byte
	Items  []fastItem
}

type fastItem struct {
	_    struct{} `cbor:",toarray"`
	N    uint32
	Data []byte
}

// slowSample has no fast codec: Unmarshal decodes it by reflection, reading
// the envelope once.
type slowSample struct {
	_     struct{} `cbor:",toarray"`
	N     uint64
	Words []string
}

const (
	typeFastSample wire.Type = 0xfb01
	typeSlowSample wire.Type = 0xfb02
)

func init() {
	wire.ClaimRange(0xfb, "wire fast-path tests")
	wire.Register(typeFastSample, (*fastSample)(nil))
	wire.Register(typeSlowSample, (*slowSample)(nil))
}

func (m *fastSample) AppendWireBody(dst []byte) []byte {
	dst = wire.AppendArrayHead(dst, 7)
	dst = wire.AppendUint(dst, uint64(m.Small))
	dst = wire.AppendUint(dst, m.Big)
	dst = wire.AppendInt(dst, m.Signed)
	dst = wire.AppendText(dst, m.Name)
	dst = wire.AppendBytes(dst, m.Blob)
	dst = wire.AppendByteString(dst, m.Key[:])
	if m.Items == nil {
		return wire.AppendNull(dst)
	}
	dst = wire.AppendArrayHead(dst, len(m.Items))
	for _, item := range m.Items {
		dst = wire.AppendArrayHead(dst, 2)
		dst = wire.AppendUint(dst, uint64(item.N))
		dst = wire.AppendBytes(dst, item.Data)
	}
	return dst
}

func (m *fastSample) DecodeWireBody(body []byte) bool {
	r := wire.NewReader(body)
	r.Array(7)
	m.Small = uint16(r.Uint(math.MaxUint16))
	m.Big = r.Uint(math.MaxUint64)
	m.Signed = r.Int64()
	m.Name = r.Text()
	m.Blob = cloneBytes(r.Bytes())
	r.FixedBytes(m.Key[:])
	n, null := r.ArrayHead(wire.MaxArrayElements)
	if !null && !r.Failed() {
		m.Items = make([]fastItem, n)
		for i := range m.Items {
			r.Array(2)
			m.Items[i].N = uint32(r.Uint(math.MaxUint32))
			m.Items[i].Data = cloneBytes(r.Bytes())
		}
	}
	return r.Done()
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

var (
	_ wire.BodyAppender = (*fastSample)(nil)
	_ wire.BodyDecoder  = (*fastSample)(nil)
)

// sampleSeeds are encodings, canonical and not, that the fuzz targets start
// from (also in testdata/fuzz).
func sampleSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	var seeds [][]byte
	for _, msg := range []any{
		&fastSample{},
		&fastSample{Small: 65535, Big: math.MaxUint64, Signed: math.MinInt64, Name: "nœud", Blob: []byte{}, Key: [4]byte{1, 2, 3, 4},
			Items: []fastItem{{N: 24, Data: []byte("x")}, {N: math.MaxUint32}}},
		&fastSample{Signed: -25, Items: []fastItem{}},
		&slowSample{N: 7, Words: []string{"a", "b"}},
	} {
		data, err := wire.Marshal(msg)
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, data)
	}
	return append(seeds,
		// Non-preferred forms of the same values: a two-byte 5, a
		// one-byte 0 as type code, null where a number or array is.
		[]byte{0x82, 0x19, 0xfb, 0x01, 0x87, 0x19, 0x00, 0x05, 0x00, 0x00, 0x60, 0xf6, 0x44, 0, 0, 0, 0, 0xf6},
		[]byte{0x82, 0x1a, 0x00, 0x00, 0xfb, 0x01, 0x87, 0x05, 0x00, 0x00, 0x60, 0xf6, 0x44, 0, 0, 0, 0, 0xf6},
		[]byte{0x82, 0x19, 0xfb, 0x01, 0x87, 0xf6, 0x00, 0x00, 0x60, 0xf6, 0x44, 0, 0, 0, 0, 0xf6},
		// A key of 3 bytes, an invalid UTF-8 name, an indefinite array.
		[]byte{0x82, 0x19, 0xfb, 0x01, 0x87, 0x05, 0x00, 0x00, 0x60, 0xf6, 0x43, 0, 0, 0, 0xf6},
		[]byte{0x82, 0x19, 0xfb, 0x01, 0x87, 0x05, 0x00, 0x00, 0x61, 0xff, 0xf6, 0x44, 0, 0, 0, 0, 0xf6},
		[]byte{0x82, 0x19, 0xfb, 0x01, 0x87, 0x05, 0x00, 0x00, 0x60, 0xf6, 0x44, 0, 0, 0, 0, 0x9f, 0xff},
	)
}

// TestFastPathMatchesReflection checks the seeds both ways.
func TestFastPathMatchesReflection(t *testing.T) {
	for _, data := range sampleSeeds(t) {
		wiretest.CheckDecode(t, data)
	}
	msg, err := wire.Unmarshal(sampleSeeds(t)[1])
	if err != nil {
		t.Fatal(err)
	}
	wiretest.CheckEncode(t, msg)
	wiretest.CheckEncode(t, (*fastSample)(nil))
}

// FuzzFastDecode compares the fast and the reflective decoders on arbitrary
// bytes: they must accept the same inputs, with the same values.
func FuzzFastDecode(f *testing.F) {
	for _, seed := range sampleSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		wiretest.CheckDecode(t, data)
	})
}

// FuzzFastEncode compares the fast and the reflective encoders on arbitrary
// values: they must write the same bytes.
func FuzzFastEncode(f *testing.F) {
	f.Add(uint16(1), uint64(24), int64(-24), "name", []byte("blob"), false, uint32(300), []byte{}, uint8(2))
	f.Add(uint16(0), uint64(1<<40), int64(math.MinInt64), "\xff", []byte(nil), true, uint32(0), []byte(nil), uint8(0))
	f.Fuzz(func(t *testing.T, small uint16, big uint64, signed int64, name string, blob []byte, nilBlob bool,
		n uint32, data []byte, items uint8) {
		msg := &fastSample{Small: small, Big: big, Signed: signed, Name: name, Blob: blob}
		if nilBlob {
			msg.Blob = nil
		} else if msg.Blob == nil {
			msg.Blob = []byte{}
		}
		copy(msg.Key[:], data)
		if items > 0 {
			msg.Items = make([]fastItem, items-1)
			for i := range msg.Items {
				msg.Items[i] = fastItem{N: n + uint32(i), Data: data}
			}
		}
		wiretest.CheckEncode(t, msg)
	})
}

// TestFastPathProperty encodes random samples both ways, and decodes random
// mutations of their encodings both ways.
func TestFastPathProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		msg := &fastSample{
			Small:  rapid.Uint16().Draw(t, "small"),
			Big:    rapid.Uint64().Draw(t, "big"),
			Signed: rapid.Int64().Draw(t, "signed"),
			Name:   rapid.String().Draw(t, "name"),
			Blob:   rapid.OneOf(rapid.Just([]byte(nil)), rapid.SliceOf(rapid.Byte())).Draw(t, "blob"),
			Items: rapid.OneOf(rapid.Just([]fastItem(nil)), rapid.SliceOfN(rapid.Custom(func(t *rapid.T) fastItem {
				return fastItem{N: rapid.Uint32().Draw(t, "n"), Data: rapid.SliceOfN(rapid.Byte(), 0, 40).Draw(t, "data")}
			}), 0, 5)).Draw(t, "items"),
		}
		copy(msg.Key[:], rapid.SliceOfN(rapid.Byte(), 4, 4).Draw(t, "key"))
		wiretest.CheckEncode(t, msg)
		data, _ := wire.Marshal(msg)
		wiretest.CheckDecode(t, mutate(t, data))
	})
}

// mutate changes, inserts or deletes a few bytes of data.
func mutate(t *rapid.T, data []byte) []byte {
	out := append([]byte(nil), data...)
	for range rapid.IntRange(1, 3).Draw(t, "mutations") {
		if len(out) == 0 {
			break
		}
		at := rapid.IntRange(0, len(out)-1).Draw(t, "at")
		switch rapid.IntRange(0, 2).Draw(t, "kind") {
		case 0:
			out[at] = rapid.Byte().Draw(t, "byte")
		case 1:
			out = append(out[:at], append([]byte{rapid.Byte().Draw(t, "inserted")}, out[at:]...)...)
		default:
			out = append(out[:at], out[at+1:]...)
		}
	}
	return out
}
