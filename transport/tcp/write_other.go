//go:build !unix

package tcp

import "syscall"

// canWriteNow tells whether writeNow can write.
const canWriteNow = false

// writeNow writes nothing on systems where a write that must not wait is
// not available: Flush leaves the frames to the writer.
func writeNow(rc syscall.RawConn, out []byte) int { return 0 }
