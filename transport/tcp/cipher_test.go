package tcp

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/flynn/noise"
)

// chachaState continues a Noise cipher state: from any nonce, it seals what
// Noise opens and opens what Noise seals, byte for byte the same, and a
// tampered chunk fails without moving the nonce.
func TestChachaStateMatchesNoise(t *testing.T) {
	key := [32]byte{1, 2, 3}
	for _, start := range []uint64{0, 1, 1 << 40} {
		t.Run(fmt.Sprint("nonce ", start), func(t *testing.T) {
			noiseSend := noise.UnsafeNewCipherState(cipherSuite, key, start)
			noiseRecv := noise.UnsafeNewCipherState(cipherSuite, key, start)
			ours := newChachaState(noise.UnsafeNewCipherState(cipherSuite, key, start))
			oursRecv := newChachaState(noise.UnsafeNewCipherState(cipherSuite, key, start))
			for i := range 5 {
				plain := bytes.Repeat([]byte{byte(i)}, 10*i)
				ad := []byte{0, 0, 0, byte(i)}
				want, err := noiseSend.Encrypt(nil, ad, plain)
				if err != nil {
					t.Fatal(err)
				}
				got, err := ours.Encrypt(nil, ad, plain)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("chunk %d sealed as %x (%v), Noise seals %x", i, got, err, want)
				}
				if opened, err := noiseRecv.Decrypt(nil, ad, got); err != nil || !bytes.Equal(opened, plain) {
					t.Fatalf("Noise opens chunk %d as %x, %v", i, opened, err)
				}
				tampered := bytes.Clone(want)
				tampered[0] ^= 1
				if _, err := oursRecv.Decrypt(nil, ad, tampered); err == nil {
					t.Fatalf("tampered chunk %d opened", i)
				}
				if opened, err := oursRecv.Decrypt(nil, ad, want); err != nil || !bytes.Equal(opened, plain) {
					t.Fatalf("chunk %d opened as %x, %v", i, opened, err)
				}
			}
		})
	}
}

// The last nonce is refused, as Noise refuses it.
func TestChachaStateStopsAtTheLastNonce(t *testing.T) {
	s := newChachaState(noise.UnsafeNewCipherState(cipherSuite, [32]byte{}, noise.MaxNonce))
	if _, err := s.Encrypt(nil, nil, []byte("x")); err != nil {
		t.Fatalf("nonce MaxNonce: %v", err)
	}
	if _, err := s.Encrypt(nil, nil, []byte("x")); err != noise.ErrMaxNonce {
		t.Fatalf("after MaxNonce: %v, want ErrMaxNonce", err)
	}
}

// Sealing and opening a frame allocates nothing beyond the output.
func TestChachaStateDoesNotAllocate(t *testing.T) {
	s := newChachaState(noise.UnsafeNewCipherState(cipherSuite, [32]byte{}, 0))
	r := newChachaState(noise.UnsafeNewCipherState(cipherSuite, [32]byte{}, 0))
	buf := make([]byte, 0, 512)
	plain := make([]byte, 256)
	allocs := testing.AllocsPerRun(100, func() {
		sealed, _ := s.Encrypt(buf[:0], nil, plain)
		if _, err := r.Decrypt(sealed[:0], nil, sealed); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per sealed and opened chunk", allocs)
	}
}
