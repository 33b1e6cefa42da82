package tcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/flynn/noise"
)

// Framing of application messages after the handshake.
//
// A message of n bytes travels as a 4-byte big-endian length n followed by
// ceil(n / maxChunkPlain) encrypted chunks (one chunk, holding just the tag,
// when n = 0). Every chunk but the last carries maxChunkPlain bytes of
// plaintext; each is sealed with the next Noise nonce and a 16-byte
// ChaCha20-Poly1305 tag, and authenticates the 4-byte length as associated
// data, so a tampered length fails the first chunk's MAC. A message under
// 64 KiB therefore costs 20 bytes of framing: the length and one tag.
const (
	// lengthLen is the length of the message length prefix.
	lengthLen = 4
	// tagLen is the AEAD tag appended to each chunk.
	tagLen = 16
	// maxChunkPlain is the plaintext carried by a full chunk, so that a
	// chunk's ciphertext is exactly the Noise maximum message of 65535 bytes.
	maxChunkPlain = noise.MaxMsgLen - tagLen
)

// errMalformed marks a frame that could not be read or authenticated.
var errMalformed = errors.New("tcp: malformed frame")

// chunkCount returns how many chunks carry a message of n bytes.
func chunkCount(n int) int {
	if n == 0 {
		return 1
	}
	return (n + maxChunkPlain - 1) / maxChunkPlain
}

// encodedLen returns the bytes on the wire for a message of n bytes.
func encodedLen(n int) int { return lengthLen + n + chunkCount(n)*tagLen }

// appendMessage appends msg's frame, encrypted with cs, to dst.
func appendMessage(dst []byte, cs *noise.CipherState, msg []byte) ([]byte, error) {
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(msg)))
	var header [lengthLen]byte
	copy(header[:], dst[start:])
	rest := msg
	for chunks := chunkCount(len(msg)); chunks > 0; chunks-- {
		part := rest[:min(len(rest), maxChunkPlain)]
		rest = rest[len(part):]
		var err error
		dst, err = cs.Encrypt(dst, header[:], part)
		if err != nil {
			return dst[:start], fmt.Errorf("encrypt: %w", err)
		}
	}
	return dst, nil
}

// messageReader reads and decrypts messages framed by appendMessage.
type messageReader struct {
	r       io.Reader
	cs      *noise.CipherState
	maxSize int
}

func newMessageReader(r io.Reader, cs *noise.CipherState, maxSize int) *messageReader {
	return &messageReader{r: r, cs: cs, maxSize: maxSize}
}

// read returns the next message. io.EOF means the stream ended cleanly on a
// frame boundary; any other error wraps errMalformed (an oversized length, a
// truncated frame, a failed authentication) or is the socket's error.
func (m *messageReader) read() ([]byte, error) {
	var header [lengthLen]byte
	if _, err := io.ReadFull(m.r, header[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: truncated length prefix: %w", errMalformed, err)
		}
		return nil, err
	}
	size := binary.BigEndian.Uint32(header[:])
	if uint64(size) > uint64(m.maxSize) {
		return nil, fmt.Errorf("%w: announced length %d over the limit %d", errMalformed, size, m.maxSize)
	}
	n := int(size)
	// Each chunk is read into place and decrypted in place, so the message
	// needs tagLen bytes of slack; memory is reserved up front only up to
	// 1 MiB, and grows with the chunks that actually arrive beyond that.
	msg := make([]byte, 0, min(n, 1<<20)+tagLen)
	remaining := n
	for chunks := chunkCount(n); chunks > 0; chunks-- {
		plain := min(remaining, maxChunkPlain)
		remaining -= plain
		msg = slices.Grow(msg, plain+tagLen)
		chunk := msg[len(msg) : len(msg)+plain+tagLen]
		if _, err := io.ReadFull(m.r, chunk); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("%w: truncated message of %d bytes: %w", errMalformed, n, io.ErrUnexpectedEOF)
			}
			return nil, err
		}
		opened, err := m.cs.Decrypt(chunk[:0], header[:], chunk)
		if err != nil {
			return nil, fmt.Errorf("%w: message of %d bytes fails authentication: %w", errMalformed, n, err)
		}
		msg = msg[:len(msg)+len(opened)]
	}
	return msg, nil
}
