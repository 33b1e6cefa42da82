// Package engine is the simulator's discrete-event engine: a virtual clock,
// a heap of events and a model of the network that drive any [overlay.Core]
// — the very code real nodes run. It imports no protocol core (an
// architecture test checks it), so package sim's scenarios, the datadriven
// script runner (internal/scenario) and the cores' own tests all run on it.
// Package sim re-exports its names.
//
// A [Sim] holds a heap of events ordered by (virtual time, sequence number):
// simultaneous events run in the order they were scheduled, so a run never
// depends on heap internals, and one seed (PCG streams of math/rand/v2) drives
// every random choice. A run with a given seed is therefore repeatable
// exactly. The engine has no goroutines and never reads the real clock except
// to draw the progress line and to report CPU and wall time.
//
// Each node has an identity derived from the seed and its index (an ed25519
// key from [peer.KeyFromSeed], address "sim-<index>") and a core. The engine
// steps a core with one input, drains its outputs and schedules its next
// [overlay.Tick] at [overlay.Core.NextDeadline]; a replaced tick stays in the
// heap and is skipped when its generation is stale. Outputs are handled as a
// runtime over TCP would:
//
//   - [overlay.Send] arrives as [overlay.Received] after the link latency,
//     unless lost, or the receiver died or was partitioned away meanwhile. A
//     Send whose To.ID is zero resolves by address. A Send to an unknown,
//     dead or unreachable node comes back as [overlay.LinkDown] after one
//     round trip, as a failed dial would.
//   - Messages on one directed link are delivered in order (TCP): a message
//     never overtakes an earlier one, whatever the latencies drawn.
//   - [overlay.Connect] records that the node keeps a link; when the other
//     end dies or a partition cuts the link, the keeper receives LinkDown
//     after Config.DetectDelay (default one round trip), as a TCP reset
//     would tell it. [overlay.Disconnect] forgets the wish; a link lives while
//     either end keeps it.
//   - Every other output goes to Config.Observer, which scenarios use to
//     measure.
//
// The network model offers fixed, uniform and normal latency ([Latency]), a
// loss rate, partitions into groups ([Sim.Partition], [Sim.Heal]), abrupt
// crashes ([Sim.Kill]) and Poisson churn ([Sim.StartChurn]). Traffic is counted
// per node and per message type; with Config.CountBytes every message is
// encoded with package wire and counted as its length plus a 4-byte frame
// header and a 16-byte AEAD tag; Config.Decode also delivers the decoded copy,
// so receivers never share the sender's pointers. Config.DeadSilent makes
// sends to dead nodes vanish instead of failing, as to a host gone without a
// reset. Config.SilentFailures makes crashes and partitions tell no one (a
// host powered off, a cable cut): what is sent over a kept link to a lost
// node vanishes, and sends and dials without one fail after
// Config.DialTimeout; HyParView's tests check its keepalives that way.
//
// Tests reach further with hooks: Config.Drop sees every message sent and
// loses those it chooses (drop every GOSSIP, cut one direction of a link),
// [Sim.Send] sends on a node's behalf what its host would (a relay over a
// direct connection), [Sim.AddNodeWithKey] gives a node a key the test
// chose (for signatures it checks), [Sim.Crash] crashes one node telling no
// one (CrashRefusing: a host that refuses; CrashSilent: a host powered
// off), [Sim.Restart] brings a dead node back with a new core and the same
// identity (what was in flight to the crashed process stays lost), and
// [Sim.SetClockSkew] sets how far one node's clock is off the virtual time.
// Every hook is off by default, so the simulator's own runs are unchanged.
// The cores' tests (hyparview, plumtree, gossip, kv's cluster, kademlia)
// build their networks this way instead of keeping event loops of their
// own.
//
// # Parallel runs
//
// With Config.Workers of 2 or more the engine is windowed (conservative
// parallel discrete-event simulation). Every event a node's step causes at
// another node is at least the lookahead L later: the latency model's
// shortest latency ([Latency.Shortest]), the dial timeout and the detection
// delay, whichever is least. So the events of different nodes due within
// [t, t+L), t the time of the earliest pending event, cannot affect one
// another: the engine takes them from the queue, steps each node's share in
// its usual (time, sequence) order on one of Workers goroutines, nodes in
// parallel (a tick a node sets within the window is stepped within it), and
// touches nothing else meanwhile. At the window's end one goroutine carries
// out what the steps caused, step by step in (time, sequence number of the
// event stepped) order, ticks set within the window after the other steps of
// their instant by node index, the clock set to each step's time: the sends
// with their latency and loss draws (the one network stream, as in
// sequential runs), links, Config.Drop, Config.OnMessage, Config.Observer
// and the type counters. A window also ends before the next callback ([Sim.At],
// [Sim.After], churn), which runs alone as in a sequential run, and before
// the limit of RunUntil; RunUntilCond checks its condition between windows.
//
// What a windowed run guarantees: for a given seed and inputs, every
// Workers of 2 or more gives the same run (the same deliveries at the same
// times, the same random draws, the same events and counters), run after
// run; how the nodes were shared among the goroutines never shows. A
// windowed run is not the sequential one: a tick set within a window is
// stepped after the other events of its instant, and RunUntilCond stops at
// a window's end; with jittered latencies and timers (no two events at one
// instant) the two agree event for event, with a fixed latency they differ
// in the order of simultaneous ticks. The cores must not share mutable
// state (what they share, such as package gossip's interned records, must
// be safe for concurrent use and a pure function of its key), and the
// callbacks see each step after its node has stepped the rest of the
// window: an Observer or OnMessage that changes the simulation (kills a
// node, steps one: package sim's kv scenario does) acts later than it
// would in a sequential run, so such scenarios keep Workers at 0. With a
// lookahead of zero (a normal latency model, clamped at zero) the windowed
// engine steps one event at a time, as the sequential one.
package engine
