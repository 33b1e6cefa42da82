package sim

import (
	"testing"
)

// FuzzParseLatency checks that any text either parses into a valid model
// that prints back to itself, or is refused; it never panics.
func FuzzParseLatency(f *testing.F) {
	for _, seed := range []string{"fixed:20ms", "20ms", "uniform:5ms,50ms", "normal:20ms,5ms", "uniform:", ":", "normal:1h,-1s", "fixed:9223372036854775807ns"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		l, err := ParseLatency(text)
		if err != nil {
			return
		}
		if err := l.Validate(); err != nil {
			t.Fatalf("ParseLatency(%q) accepted an invalid model: %v", text, err)
		}
		back, err := ParseLatency(l.String())
		if err != nil || back != l {
			t.Fatalf("ParseLatency(%q) = %v, which reparses as %v, %v", text, l, back, err)
		}
	})
}

// FuzzDecodePayload checks that any bytes decode to an index only when they
// carry the scenario header, and that encoding round-trips.
func FuzzDecodePayload(f *testing.F) {
	f.Add([]byte("SIM1\x00\x00\x00\x07 filler"))
	f.Add([]byte("SIM1"))
	f.Add([]byte{})
	f.Add([]byte("\x01SIM1\x00\x00\x00\x07"))
	f.Fuzz(func(t *testing.T, data []byte) {
		index, ok := decodePayload(data)
		if !ok {
			return
		}
		if len(data) < 8 || string(data[:4]) != payloadHeader {
			t.Fatalf("decoded %x without the header", data)
		}
		again, ok := decodePayload(encodePayload(index, 8))
		if !ok || again != index {
			t.Fatalf("index %d did not round-trip", index)
		}
	})
}
