//go:build unix

package tcp

import (
	"errors"
	"syscall"
)

// canWriteNow tells whether writeNow can write.
const canWriteNow = true

// writeNow writes as much of out as the socket takes without waiting and
// returns how much that was: 0 when its buffer is full or the write
// failed (the writer then meets the error).
func writeNow(rc syscall.RawConn, out []byte) int {
	written := 0
	rc.Write(func(fd uintptr) bool {
		for {
			n, err := syscall.Write(int(fd), out)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if n > 0 {
				written = n
			}
			return true // done, whatever happened: never wait here
		}
	})
	return written
}
