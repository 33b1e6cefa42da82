package p2p

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzDecodeKeyMessage feeds keyring messages from peers to the decoder:
// it must never panic, and what it accepts is within the limits and encodes
// back to an equal message.
func FuzzDecodeKeyMessage(f *testing.F) {
	key := bytes.Repeat([]byte{7}, SecretLen)
	for _, m := range []keyMessage{
		{Op: keyOpList, ID: 1},
		{Op: keyOpInstall, ID: 2, Key: key},
		{Op: keyOpUse, ID: 3, Key: key},
		{Op: keyOpRemove, ID: 4, Key: key},
		{Op: keyOpReply, ID: 5, Keys: [][]byte{key, key}},
		{Op: keyOpReply, ID: 6, Error: "tcp: the primary key cannot be removed"},
	} {
		data, _ := json.Marshal(m)
		f.Add(data)
	}
	f.Add([]byte(`{"op":"install","key":"c2hvcnQ="}`))
	f.Add([]byte(`{"op":"reply","keys":[null]}`))
	f.Add([]byte(`{"op":"drop"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeKeyMessage(data)
		if err != nil {
			return
		}
		if len(m.Keys) > 16 || len(m.Error) > 1024 {
			t.Fatalf("accepted a message over the limits: %d keys, %d bytes of error", len(m.Keys), len(m.Error))
		}
		for _, k := range m.Keys {
			if len(k) != SecretLen {
				t.Fatalf("accepted a key of %d bytes", len(k))
			}
		}
		again, _ := json.Marshal(m)
		if _, err := decodeKeyMessage(again); err != nil {
			t.Fatalf("re-encoded message refused: %v", err)
		}
	})
}
