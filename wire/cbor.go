package wire

import (
	"encoding/binary"
	"math"
	"unicode/utf8"
)

// Hand-written codecs (see [BodyAppender] and [BodyDecoder]) build and read
// CBOR with the functions of this file. The Append functions write exactly
// what the reflective deterministic encoder writes for the same Go value: the
// shortest head for every length and integer, and null for a nil slice. The
// [Reader] accepts only that preferred form, and reports anything else as
// "not mine", so that [Unmarshal] can hand the bytes to the reflective
// decoder, which decides.

// CBOR major types, in the high 3 bits of an item's first byte.
const (
	majorUint   = 0 << 5
	majorNegInt = 1 << 5
	majorBytes  = 2 << 5
	majorText   = 3 << 5
	majorArray  = 4 << 5
	cborNull    = 0xf6
)

// appendHead appends the shortest head of an item of major type major whose
// argument (value or length) is v.
func appendHead(dst []byte, major byte, v uint64) []byte {
	switch {
	case v < 24:
		return append(dst, major|byte(v))
	case v <= math.MaxUint8:
		return append(dst, major|24, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, major|25), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, major|26), uint32(v))
	default:
		return binary.BigEndian.AppendUint64(append(dst, major|27), v)
	}
}

// AppendArrayHead appends the head of a CBOR array of n elements; the caller
// appends the n elements after it. A Go struct encoded as an array (the
// `cbor:",toarray"` tag) starts with the head of its number of fields.
func AppendArrayHead(dst []byte, n int) []byte { return appendHead(dst, majorArray, uint64(n)) }

// AppendNull appends CBOR null, what the reflective encoder writes for a nil
// slice or pointer.
func AppendNull(dst []byte) []byte { return append(dst, cborNull) }

// AppendUint appends v as a CBOR unsigned integer.
func AppendUint(dst []byte, v uint64) []byte { return appendHead(dst, majorUint, v) }

// AppendInt appends v as a CBOR integer: unsigned when v >= 0, negative
// (major type 1, argument -1-v) otherwise.
func AppendInt(dst []byte, v int64) []byte {
	if v >= 0 {
		return appendHead(dst, majorUint, uint64(v))
	}
	return appendHead(dst, majorNegInt, uint64(-(v + 1)))
}

// AppendByteString appends b as a CBOR byte string, even when b is nil: the
// encoding of a Go byte array such as [32]byte.
func AppendByteString(dst []byte, b []byte) []byte {
	return append(appendHead(dst, majorBytes, uint64(len(b))), b...)
}

// AppendBytes appends a Go []byte as the reflective encoder does: null when
// b is nil, else a byte string (empty for an empty, non-nil b).
func AppendBytes(dst []byte, b []byte) []byte {
	if b == nil {
		return AppendNull(dst)
	}
	return AppendByteString(dst, b)
}

// AppendText appends s as a CBOR text string. s should be valid UTF-8:
// the decoder refuses text strings that are not.
func AppendText(dst []byte, s string) []byte {
	return append(appendHead(dst, majorText, uint64(len(s))), s...)
}

// Reader reads the preferred CBOR encoding of integers, byte and text
// strings, null and array heads from a byte slice, for hand-written decoders
// ([BodyDecoder]). Its failures are sticky: after the first item that is not
// what the decoder asked for, or not in its shortest form, every method
// returns a zero value and [Reader.Done] reports false. A Reader never
// refuses an input for good: it only says that the input is not in the one
// form it reads, and the caller leaves the decision to the reflective
// decoder.
type Reader struct {
	data   []byte
	failed bool
}

// NewReader returns a Reader of data. The byte slices it returns point into
// data.
func NewReader(data []byte) Reader { return Reader{data: data} }

// Done reports whether every item read so far was well read and the whole
// input was consumed.
func (r *Reader) Done() bool { return !r.failed && len(r.data) == 0 }

// Failed reports whether an item was not in the form asked for.
func (r *Reader) Failed() bool { return r.failed }

// Remaining returns the number of bytes not read yet.
func (r *Reader) Remaining() int { return len(r.data) }

func (r *Reader) fail() { r.failed, r.data = true, nil }

// head reads the head of an item of major type major in its shortest form
// and returns its argument. (After a failure data is empty: head fails.)
func (r *Reader) head(major byte) uint64 {
	data := r.data
	if len(data) == 0 || data[0]&0xe0 != major {
		r.fail()
		return 0
	}
	if info := data[0] & 0x1f; info < 24 {
		r.data = data[1:]
		return uint64(info)
	}
	return r.longHead()
}

// longHead reads a head whose argument follows its first byte.
func (r *Reader) longHead() uint64 {
	data := r.data
	var v, min uint64
	var size int
	switch info := data[0] & 0x1f; {
	case info == 24 && len(data) >= 2:
		v, min, size = uint64(data[1]), 24, 2
	case info == 25 && len(data) >= 3:
		v, min, size = uint64(binary.BigEndian.Uint16(data[1:])), math.MaxUint8+1, 3
	case info == 26 && len(data) >= 5:
		v, min, size = uint64(binary.BigEndian.Uint32(data[1:])), math.MaxUint16+1, 5
	case info == 27 && len(data) >= 9:
		v, min, size = binary.BigEndian.Uint64(data[1:]), math.MaxUint32+1, 9
	default: // reserved, indefinite length, or truncated
		r.fail()
		return 0
	}
	if v < min { // not the shortest form
		r.fail()
		return 0
	}
	r.data = data[size:]
	return v
}

// isNull consumes a null and reports whether there was one.
func (r *Reader) isNull() bool {
	if !r.failed && len(r.data) > 0 && r.data[0] == cborNull {
		r.data = r.data[1:]
		return true
	}
	return false
}

// Array reads the head of an array of exactly n elements (a struct encoded
// as an array of its n fields).
func (r *Reader) Array(n int) {
	if got := r.head(majorArray); got != uint64(n) {
		r.fail()
	}
}

// ArrayHead reads the head of an array of at most max elements, or null
// (what the reflective encoder writes for a nil slice), and returns the
// number of elements. An array of more elements than [MaxArrayElements], or
// than bytes remain (every element takes at least one byte), is not read.
func (r *Reader) ArrayHead(max int) (n int, null bool) {
	if r.isNull() {
		return 0, true
	}
	v := r.head(majorArray)
	if v > uint64(max) || v > MaxArrayElements || v > uint64(len(r.data)) {
		r.fail()
		return 0, false
	}
	return int(v), false
}

// Uint reads an unsigned integer of at most max.
func (r *Reader) Uint(max uint64) uint64 {
	v := r.head(majorUint)
	if v > max {
		r.fail()
		return 0
	}
	return v
}

// Int64 reads an integer, unsigned or negative, that fits an int64.
func (r *Reader) Int64() int64 {
	if !r.failed && len(r.data) > 0 && r.data[0]&0xe0 == majorNegInt {
		v := r.head(majorNegInt)
		if v > math.MaxInt64 {
			r.fail()
			return 0
		}
		return -1 - int64(v)
	}
	return int64(r.Uint(math.MaxInt64))
}

// byteString reads the head and content of a string of major type major.
func (r *Reader) byteString(major byte) []byte {
	n := r.head(major)
	if r.failed {
		return nil
	}
	if n > uint64(len(r.data)) {
		r.fail()
		return nil
	}
	b := r.data[:n:n]
	r.data = r.data[n:]
	return b
}

// FixedBytes reads a byte string of exactly len(dst) bytes into dst (a Go
// byte array such as [32]byte).
func (r *Reader) FixedBytes(dst []byte) {
	b := r.byteString(majorBytes)
	if len(b) != len(dst) {
		r.fail()
		return
	}
	copy(dst, b)
}

// Bytes reads a byte string, or null, and returns it without copying: the
// result points into the Reader's input. It is nil for null and empty but
// not nil for an empty byte string, as the reflective decoder decodes them
// into a []byte; a decoder that keeps the result copies it the same way.
func (r *Reader) Bytes() []byte {
	if r.isNull() {
		return nil
	}
	return r.byteString(majorBytes)
}

// Text reads a text string of valid UTF-8 (what the hardened decoder
// accepts) and returns a copy of it.
func (r *Reader) Text() string {
	b := r.byteString(majorText)
	if r.failed || !utf8.Valid(b) {
		r.fail()
		return ""
	}
	return string(b)
}
