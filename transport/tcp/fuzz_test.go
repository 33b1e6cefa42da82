package tcp

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/flynn/noise"

	"github.com/p2p-go/p2p/wire"
)

// fuzzKey is the fixed session key of the frame fuzz targets.
var fuzzKey = [32]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}

// fuzzCipher returns a fresh cipher state at nonce 0 under fuzzKey, as both
// ends of a session hold after the handshake.
func fuzzCipher() *noise.CipherState { return noise.UnsafeNewCipherState(cipherSuite, fuzzKey, 0) }

// fuzzMaxFrame keeps the reader's limit small so the fuzzer reaches it.
const fuzzMaxFrame = 3*maxChunkPlain + 100

// FuzzVerifyIdentity feeds arbitrary handshake payloads and static keys to
// the identity decoder: it must never panic, and must accept only a proof
// whose signature covers exactly the given static key.
func FuzzVerifyIdentity(f *testing.F) {
	key := newKey(f)
	static := bytes.Repeat([]byte{9}, 32)
	good, err := newIdentityPayload(key, static, "127.0.0.1:6966")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, static)
	f.Add([]byte{0x83, 0x40, 0x40, 0x60}, static)
	f.Fuzz(func(t *testing.T, payload, peerStatic []byte) {
		info, err := verifyIdentity(payload, peerStatic)
		if err != nil {
			return
		}
		if info.ID.IsZero() || checkAddr(info.Addr) != nil {
			t.Fatalf("accepted a bad identity: %v", info)
		}
		var proof identityProof
		if err := wire.UnmarshalValue(payload, &proof); err != nil {
			t.Fatalf("accepted a payload that does not decode: %v", err)
		}
	})
}

// FuzzReadHandshakeFrame reads handshake messages from arbitrary bytes with
// wire.ReadFrame's bound: never a panic, never a message over the bound.
func FuzzReadHandshakeFrame(f *testing.F) {
	f.Add(wire.AppendFrame(nil, make([]byte, 32)))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 10, 1, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			msg, err := readHandshakeMsg(r)
			if err != nil {
				return
			}
			if len(msg) > maxHandshakeMsg {
				t.Fatalf("read a %d-byte handshake message, bound %d", len(msg), maxHandshakeMsg)
			}
		}
	})
}

// FuzzReadMessage decrypts and reassembles messages from arbitrary bytes:
// never a panic, never a message over the limit, and every error but a
// clean end of stream is reported as malformed.
func FuzzReadMessage(f *testing.F) {
	for _, seed := range fuzzFrameSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		reader := newMessageReader(bytes.NewReader(data), fuzzCipher(), fuzzMaxFrame)
		for {
			msg, err := reader.read()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, errMalformed) {
					t.Fatalf("unexpected error class: %v", err)
				}
				return
			}
			if len(msg) > fuzzMaxFrame {
				t.Fatalf("read a %d-byte message, limit %d", len(msg), fuzzMaxFrame)
			}
		}
	})
}

// FuzzMessageRoundTrip checks that any message, split into any number of
// chunks, comes back intact and that the encoded size is as documented.
func FuzzMessageRoundTrip(f *testing.F) {
	f.Add([]byte(nil), uint16(0))
	f.Add([]byte("hello"), uint16(2))
	f.Add(bytes.Repeat([]byte{7}, 1000), uint16(maxChunkPlain))
	f.Fuzz(func(t *testing.T, msg []byte, extra uint16) {
		// Grow some inputs past a chunk boundary to exercise reassembly.
		if int(extra) > len(msg) {
			msg = append(msg, bytes.Repeat([]byte{byte(extra)}, int(extra)*2)...)
		}
		frame, err := appendMessage(nil, fuzzCipher(), msg)
		if err != nil {
			t.Fatal(err)
		}
		if len(frame) != encodedLen(len(msg)) {
			t.Fatalf("frame of %d bytes for a %d-byte message, want %d", len(frame), len(msg), encodedLen(len(msg)))
		}
		got, err := newMessageReader(bytes.NewReader(frame), fuzzCipher(), 1<<20).read()
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("round trip of %d bytes: got %d bytes, %v", len(msg), len(got), err)
		}
	})
}

// fuzzFrameSeeds returns valid streams (so the fuzzer starts past the MAC)
// and some classic broken ones.
func fuzzFrameSeeds(tb testing.TB) [][]byte {
	encode := func(msgs ...[]byte) []byte {
		cs := fuzzCipher()
		var out []byte
		for _, m := range msgs {
			var err error
			if out, err = appendMessage(out, cs, m); err != nil {
				tb.Fatal(err)
			}
		}
		return out
	}
	return [][]byte{
		encode([]byte("hello")),
		encode(nil, []byte("two"), make([]byte, 300)),
		encode(make([]byte, maxChunkPlain+5)),
		{0, 0, 0, 5},
		{0xff, 0xff, 0xff, 0xff},
		{0, 0},
	}
}
