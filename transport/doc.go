// Package transport defines how a node exchanges messages with its peers.
//
// A [Transport] dials and accepts authenticated connections; a [Conn] carries
// whole messages (the transport does the framing and the encryption) and knows
// the authenticated identity and the advertised listen address of the peer at
// its other end. Two implementations exist: package transport/tcp (TCP secured
// by a Noise XX handshake, the real one) and package transport/memnet (an
// in-memory network with latency, loss and partitions, for tests).
package transport
