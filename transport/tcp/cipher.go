package tcp

import (
	"crypto/cipher"
	"encoding/binary"
	"fmt"

	"github.com/flynn/noise"
	"golang.org/x/crypto/chacha20poly1305"
)

// frameCipher seals and opens the chunks of application messages, each
// with the next nonce: *noise.CipherState has these methods, and so has
// chachaState, which the connections use.
type frameCipher interface {
	Encrypt(out, ad, plaintext []byte) ([]byte, error)
	Decrypt(out, ad, ciphertext []byte) ([]byte, error)
}

// chachaState continues a Noise session's ChaChaPoly cipher state, with the
// same key, nonces and output, without allocating per message (Noise's
// cipher builds each nonce in a fresh slice, two allocations per message
// and hop).
type chachaState struct {
	aead  cipher.AEAD
	n     uint64
	nonce [chacha20poly1305.NonceSize]byte
}

var _ frameCipher = (*chachaState)(nil)

// newChachaState takes over cs, which must use the ChaChaPoly cipher (that
// of cipherSuite); cs must not be used afterwards.
func newChachaState(cs *noise.CipherState) *chachaState {
	key := cs.UnsafeKey()
	aead, err := chacha20poly1305.New(key[:])
	if err != nil {
		panic(fmt.Sprintf("tcp: ChaChaPoly key: %v", err)) // a 32-byte key never fails
	}
	return &chachaState{aead: aead, n: cs.Nonce()}
}

// next returns the nonce for s.n as Noise lays it out: four zero bytes,
// then the counter in little-endian order.
func (s *chachaState) next() ([]byte, error) {
	if s.n > noise.MaxNonce {
		return nil, noise.ErrMaxNonce
	}
	binary.LittleEndian.PutUint64(s.nonce[4:], s.n)
	return s.nonce[:], nil
}

// Encrypt appends the sealed plaintext to out and moves to the next nonce.
func (s *chachaState) Encrypt(out, ad, plaintext []byte) ([]byte, error) {
	nonce, err := s.next()
	if err != nil {
		return nil, err
	}
	out = s.aead.Seal(out, nonce, plaintext, ad)
	s.n++
	return out, nil
}

// Decrypt appends the opened ciphertext to out and moves to the next nonce;
// a ciphertext that fails authentication leaves the nonce where it was.
func (s *chachaState) Decrypt(out, ad, ciphertext []byte) ([]byte, error) {
	nonce, err := s.next()
	if err != nil {
		return nil, err
	}
	out, err = s.aead.Open(out, nonce, ciphertext, ad)
	if err != nil {
		return nil, err
	}
	s.n++
	return out, nil
}
