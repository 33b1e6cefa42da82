package tcp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"

	"github.com/flynn/noise"

	"github.com/p2p-go/p2p/internal/bytebudget"
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
func appendMessage(dst []byte, cs frameCipher, msg []byte) ([]byte, error) {
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

// errBufferLimit marks a message that would have taken the bytes buffered
// over the transport's MaxBufferedBytes.
var errBufferLimit = errors.New("tcp: buffered bytes over the limit")

// errFrameTimeout marks a message that did not arrive within FrameTimeout.
var errFrameTimeout = errors.New("tcp: message did not arrive in time")

// frameHooks lets the connection bound a message's arrival: started is
// called once a message's length has arrived, ended once the message is
// read (or failed); waitForBudget waits until freed is closed, and fails
// when the message's time is up or the connection closes.
type frameHooks interface {
	frameStarted()
	frameEnded()
	waitForBudget(freed <-chan struct{}) error
}

// reserve takes rest bytes of the budget for a message of n bytes, waiting
// (without reading: TCP pushes back on the sender) while other messages
// hold it.
func (m *messageReader) reserve(n, rest int) error {
	for {
		ok, freed := m.budget.TryAcquire(rest)
		if ok {
			return nil
		}
		if m.hooks == nil {
			return fmt.Errorf("%w: a message of %d bytes would need %d more", errBufferLimit, n, rest)
		}
		if err := m.hooks.waitForBudget(freed); err != nil {
			return fmt.Errorf("%w: a message of %d bytes waited for %d more: %w", errBufferLimit, n, rest, err)
		}
	}
}

// messageReader reads and decrypts messages framed by appendMessage.
type messageReader struct {
	r       io.Reader
	buffer  *bufio.Reader // r when it is one: what was read ahead is known
	cs      frameCipher
	maxSize int
	budget  *bytebudget.Budget // nil: no limit beyond maxSize
	hooks   frameHooks         // nil: none
	// held is the budget kept by the last message returned: it stays
	// reserved while the caller holds the message, until the next read or
	// releaseHeld, so that messages handed over but not yet consumed count
	// too.
	held atomic.Int64
	// header holds the length prefix being read: a field, so that reading
	// it does not allocate.
	header [lengthLen]byte
}

// releaseHeld gives back the budget kept by the last message returned.
func (m *messageReader) releaseHeld() {
	if n := m.held.Swap(0); n > 0 {
		m.budget.Release(int(n))
	}
}

func newMessageReader(r io.Reader, cs frameCipher, maxSize int) *messageReader {
	m := &messageReader{r: r, cs: cs, maxSize: maxSize}
	m.buffer, _ = r.(*bufio.Reader)
	return m
}

// buffered reports whether a whole message of one chunk is in the read
// buffer, so that read returns it without reading from the network.
func (m *messageReader) buffered() bool {
	if m.buffer == nil {
		return false
	}
	n := m.buffer.Buffered()
	if n < lengthLen {
		return false
	}
	header, _ := m.buffer.Peek(lengthLen)
	size := binary.BigEndian.Uint32(header)
	return size <= maxChunkPlain && n-lengthLen >= int(size)+tagLen
}

// read returns the next message; the previous one's reservation, if any,
// is released. io.EOF means the stream ended cleanly on a
// frame boundary; any other error wraps errMalformed (an oversized length, a
// truncated frame, a failed authentication), errBufferLimit, or is the
// socket's error.
//
// Memory follows what arrives, never what the length announces: the first
// chunk (at most 64 KiB) is always read; the rest of a longer message is
// reserved from the shared budget once the first chunk has been
// authenticated (waiting while other messages hold it, for at most the
// connection's FrameTimeout), and allocated then.
func (m *messageReader) read() (_ []byte, err error) {
	m.releaseHeld()
	header := &m.header
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
	// A message of one chunk already in the buffer arrives without waiting,
	// so it needs no deadline: setting one and lifting it again takes the
	// poller's lock and moves a timer twice per message.
	inBuffer := m.buffer != nil && n <= maxChunkPlain && m.buffer.Buffered() >= n+tagLen
	if m.hooks != nil && !inBuffer {
		m.hooks.frameStarted()
		defer m.hooks.frameEnded()
	}
	msg := make([]byte, 0, min(n, maxChunkPlain)+tagLen)
	remaining := n
	for chunk := 0; chunk < chunkCount(n); chunk++ {
		plain := min(remaining, maxChunkPlain)
		remaining -= plain
		if chunk == 1 {
			// Each chunk is decrypted in place, so the message needs
			// tagLen bytes of slack.
			rest := plain + remaining + tagLen
			if m.budget != nil {
				if err := m.reserve(n, rest); err != nil {
					return nil, err
				}
				defer func() {
					if err != nil {
						m.budget.Release(rest)
					} else {
						m.held.Store(int64(rest))
					}
				}()
			}
			msg = slices.Grow(msg, rest)
		}
		body := msg[len(msg) : len(msg)+plain+tagLen]
		if _, err := io.ReadFull(m.r, body); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("%w: truncated message of %d bytes: %w", errMalformed, n, io.ErrUnexpectedEOF)
			}
			return nil, err
		}
		opened, err := m.cs.Decrypt(body[:0], header[:], body)
		if err != nil {
			return nil, fmt.Errorf("%w: message of %d bytes fails authentication: %w", errMalformed, n, err)
		}
		msg = msg[:len(msg)+len(opened)]
	}
	return msg, nil
}
