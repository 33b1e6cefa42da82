//go:build unix

package tcp

import (
	"errors"
	"syscall"
)

// canWriteNow tells whether writeNow can write.
const canWriteNow = true

// nowWriter writes to a socket without waiting. One per connection, used
// under its writeMu: the function handed to syscall.RawConn.Write is made
// once, so that a write allocates nothing.
type nowWriter struct {
	out     []byte
	written int
	fn      func(fd uintptr) bool
}

func newNowWriter() *nowWriter {
	w := &nowWriter{}
	w.fn = w.write
	return w
}

func (w *nowWriter) write(fd uintptr) bool {
	for {
		n, err := syscall.Write(int(fd), w.out)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if n > 0 {
			w.written = n
		}
		return true // done, whatever happened: never wait here
	}
}

// writeNow writes as much of out as the socket takes without waiting and
// returns how much that was: 0 when its buffer is full or the write
// failed (the writer then meets the error).
func (w *nowWriter) writeNow(rc syscall.RawConn, out []byte) int {
	w.out, w.written = out, 0
	rc.Write(w.fn)
	w.out = nil
	return w.written
}
