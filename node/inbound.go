package node

import "sync"

// DefaultMaxQueuedBytes bounds the encoded size of the received messages
// waiting for the loop. Readers wait beyond it, which pushes back on the
// senders through the transport, so that peers sending faster than the
// loop steps (an insider sending 1 MiB messages on hundreds of
// connections) cannot fill memory: the queue holds at most 256 messages,
// which at 1 MiB each would be 256 MiB without this bound.
const DefaultMaxQueuedBytes = 16 << 20

// maxBatch bounds the messages a reader hands to the loop at once, so that
// one busy peer's batch delays the others' by a bounded amount (64
// messages are a millisecond or two of stepping).
const maxBatch = 64

// inboundBatch is messages read from one connection, handed to the loop in
// one channel operation.
type inboundBatch struct {
	conn *connection
	msgs []any
	size int // encoded size of msgs, taken from Runtime.queued
}

// batchPool recycles batches once the loop has stepped them.
var batchPool = sync.Pool{New: func() any { return &inboundBatch{msgs: make([]any, 0, 8)} }}

func newInboundBatch(c *connection) *inboundBatch {
	b := batchPool.Get().(*inboundBatch)
	b.conn = c
	return b
}

// recycle clears b and returns it to the pool.
func (b *inboundBatch) recycle() {
	clear(b.msgs)
	b.msgs = b.msgs[:0]
	b.conn = nil
	b.size = 0
	batchPool.Put(b)
}
