package node

// DefaultMaxQueuedBytes bounds the encoded size of the received messages
// waiting for the loop. Readers wait beyond it, which pushes back on the
// senders through the transport, so that peers sending faster than the
// loop steps (an insider sending 1 MiB messages on hundreds of
// connections) cannot fill memory: the queue holds at most 256 messages,
// which at 1 MiB each would be 256 MiB without this bound.
const DefaultMaxQueuedBytes = 16 << 20
