package wire

import (
	"bytes"
	"testing"
)

// FuzzUnmarshal checks that no input makes the decoder panic and that what it
// accepts re-encodes to something it accepts again.
func FuzzUnmarshal(f *testing.F) {
	ping, _ := Marshal(&testPing{Nonce: 1, Note: "x"})
	list, _ := Marshal(&testList{Items: [][]byte{{1}, {2, 3}}})
	for _, seed := range [][]byte{ping, list, {}, {0x82, 0x19, 0xff, 0x01, 0x80}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := Unmarshal(data)
		if err != nil {
			return
		}
		again, err := Marshal(msg)
		if err != nil {
			t.Fatalf("re-encode %T: %v", msg, err)
		}
		if _, err := Unmarshal(again); err != nil {
			t.Fatalf("decode of re-encoded %T: %v", msg, err)
		}
	})
}

// FuzzReadFrame checks that the frame reader never panics nor returns more
// than the limit.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0, 0, 0, 3, 'a', 'b', 'c'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 9, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			frame, err := ReadFrame(r, 64)
			if err != nil {
				return
			}
			if len(frame) > 64 {
				t.Fatalf("frame of %d bytes over the limit", len(frame))
			}
		}
	})
}
