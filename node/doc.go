// Package node drives a protocol core (an [overlay.Core]) over a real
// transport, with the time of a [Clock]: the system clock by default, or
// one a test steps. The root package's Broadcaster and DHT are both built
// on a [Runtime].
//
// A [Runtime] owns one goroutine, the loop, which steps the core with
// messages decoded from peers, link failures, local requests and timer
// ticks, and carries out the core's outputs, one turn at a time. Around it,
// one goroutine accepts inbound connections, and each connection has a
// reader and a writer goroutine, so that a slow peer never stalls the loop.
// The loop's turns are serialised by a lock, not by its goroutine: a reader
// that finds no turn under way and none of its earlier messages waiting
// takes the turn and steps the messages it read itself, rather than waking
// the loop's goroutine for them (one goroutine hand-off less per message at
// light load; under load the loop is busy and readers queue their messages
// for it). "On the loop" in this package's docs means during a turn: the
// core, Config.OnOutput, Do's functions and StepFromOutput never run
// concurrently with one another.
//
// The hot path: a reader hands the loop every message that one read from the
// socket brought in, in one batch (transport.BufferedReceiver), or steps
// the batch itself when the loop is idle; the loop
// queues what it sends without waking anyone (transport.DeferredSender) and
// flushes the connections it wrote to when no input is waiting, or every 64
// inputs, so that under load the messages to a peer share a write and the
// peer's read, and when idle each leaves at once. A message sent to several
// peers in one step is encoded once. The runtime's writer goroutine only
// carries what the transport could not take without waiting.
//
// Links: the runtime keeps the connections to each peer (dialled on demand
// when the core sends to a peer it has no connection to, or accepted from it),
// and may hold more than one per peer when both sides dialled at once; a
// message goes out on the newest. When the last connection to a peer closes, or
// a dial fails, the core is stepped with an [overlay.LinkDown]. Links the core
// did not ask to keep ([overlay.Connect]), or released ([overlay.Disconnect]),
// are closed after IdleTimeout without traffic, never at once: a message the
// peer sent meanwhile would be lost.
//
// Connection manager (libp2p's connmgr is the model): above HighWater open
// connections (DefaultHighWater, 128) the runtime closes the least recently
// used ones down to LowWater (96), sparing the links the core asked to keep
// and the connections used within GracePeriod (10 s: longer than any
// request waits for its reply). It runs when a connection opens and once a
// second; Stats.ConnsTrimmed counts what it closed. Hard limits (total and
// per-peer connection caps, buffered bytes) belong to the transport.
//
// Lifetime: Close cancels the accept loop and the dials in flight, closes
// the transport and returns once every goroutine the runtime started has
// ended.
//
// Denied peers: Config.Denied names peers to refuse (the nodes revoked from
// the cluster). Their new connections are closed right after the handshake,
// before a message is read; messages to them are dropped without a dial (the
// core is told the link is down); and Runtime.CloseDenied closes the links
// they already have. Each refusal is counted (Stats.DeniedConns,
// Stats.DeniedSends) and their log lines are rate-limited.
//
// Back-pressure: each connection has a bounded send queue (SendQueueLen
// messages); when it is full the message is dropped and counted, because
// blocking the loop on one slow peer would stall every other. Readers block
// when the loop is busy (256 batches, or MaxQueuedBytes, 16 MiB, of messages
// wait for it), which pushes back on the sender through TCP. Local inputs
// (Step, Do, Post) wait in one queue of 64, taken in order; Step and Do
// wait for their input to be processed, Post only for room in the queue.
// A waiting local input goes before the received messages every other turn,
// so that it waits for at most about one turn.
package node
