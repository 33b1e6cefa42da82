// Package memnet is an in-memory network for runtime tests: any number of
// nodes, each with a [Transport] at an arbitrary address ("node-7"), connect
// to each other through a [Network] that can delay, reorder-free jitter,
// drop, cut and crash, the way etcd-io/raft's test network and tailscale's
// net/memnet do for their tests.
//
// A Transport implements transport.Transport and its connections implement
// transport.Conn with the semantics of package transport/tcp: Remote
// reports the peer's ID and listen address (authenticated, since the
// network knows every node's key), Send refuses a message over the maximum
// frame size with transport.ErrTooLarge, operations on a closed transport or
// connection return transport.ErrClosed, and each connection delivers its
// messages in order even when latency jitters: a message is delivered at
// max(send time + latency + uniform[0, jitter), previous delivery on that
// connection).
//
// Faults: [Network.SetLatency], [Network.SetLoss] (each message dropped with
// that probability), [Network.Partition] and [Network.Heal],
// [Network.Isolate], [Network.Kill] (a crash: the node's connections break
// on the other side and dials to it fail) and [Network.SetHook] (a function
// that sees every message and may drop it). Losses and jitter draw from a
// random source seeded by Config.Seed.
//
// The network uses real time, since it serves tests of goroutine-based
// runtimes; it starts no goroutine of its own (Recv waits with a timer in
// the caller's goroutine), so it leaves none behind. The protocol
// simulator, which needs virtual time, models its network separately.
package memnet
