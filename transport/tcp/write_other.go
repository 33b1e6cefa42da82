//go:build !unix

package tcp

import "syscall"

// canWriteNow tells whether writeNow can write.
const canWriteNow = false

// nowWriter writes nothing on systems where a write that must not wait is
// not available: Flush leaves the frames to the writer.
type nowWriter struct{}

func newNowWriter() *nowWriter { return &nowWriter{} }

// writeNow writes nothing: see nowWriter.
func (w *nowWriter) writeNow(rc syscall.RawConn, out []byte) int { return 0 }
