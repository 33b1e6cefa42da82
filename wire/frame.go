package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxFrameSize is the default largest frame accepted: 1 MiB.
const DefaultMaxFrameSize = 1 << 20

// FrameHeaderLen is the length of the frame's length prefix.
const FrameHeaderLen = 4

// ErrFrameTooLarge is returned for a frame longer than the allowed maximum.
var ErrFrameTooLarge = errors.New("wire: frame too large")

// AppendFrame appends data prefixed with its 4-byte big-endian length to dst.
func AppendFrame(dst, data []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(data)))
	return append(dst, data...)
}

// WriteFrame writes one length-prefixed frame to w. It refuses frames longer
// than maxSize (DefaultMaxFrameSize when maxSize <= 0).
func WriteFrame(w io.Writer, data []byte, maxSize int) error {
	if maxSize <= 0 {
		maxSize = DefaultMaxFrameSize
	}
	if len(data) > maxSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(data), maxSize)
	}
	_, err := w.Write(AppendFrame(make([]byte, 0, FrameHeaderLen+len(data)), data))
	return err
}

// ReadFrame reads one length-prefixed frame from r. A length over maxSize
// (DefaultMaxFrameSize when maxSize <= 0) is refused before the body is read.
// A stream that ends inside a frame yields io.ErrUnexpectedEOF.
func ReadFrame(r io.Reader, maxSize int) ([]byte, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxFrameSize
	}
	var header [FrameHeaderLen]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(header[:])
	if uint64(size) > uint64(maxSize) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, size, maxSize)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(r, data); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return data, nil
}
