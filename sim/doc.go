// Package sim simulates thousands of nodes in one process by driving the
// protocol cores — the very [overlay.Core] code real nodes run — with a
// virtual clock and a discrete-event model of the network.
//
// # Engine
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
// header and a 16-byte AEAD tag.
//
// # Scenarios
//
// [RunBroadcast] joins N nodes one after another through random earlier
// nodes, lets the overlay settle, broadcasts M messages from random nodes and
// measures the delivery ratio, the relative message redundancy
// RMR = payload receptions / (N − 1) − 1 of the Plumtree paper (Leitão,
// Pereira, Rodrigues, SRDS 2007), hop counts, the time until the last node
// has each message, and bytes per node per message. With KillFraction it is
// the massfail scenario of the HyParView paper (DSN 2007): a share of the
// nodes crashes at once, then the first messages' delivery and the time the
// overlay takes to heal are measured. With ChurnFraction a share of the nodes
// is replaced (crashes and new joins, one at a time) before the messages. The
// overlay is pluggable ([Protocol]):
// [GossipProtocol] runs the framework's Broadcaster core (package gossip),
// [PlumtreeProtocol] runs Plumtree over HyParView alone, as the papers
// evaluate them.
//
// [RunKademlia] bootstraps Kademlia nodes (Maymounkov, Mazières, IPTPS 2002)
// and checks lookups against the true k closest live nodes found by brute
// force, counting hops, messages and time, optionally under churn; it also
// stores and fetches records. [RunKV] runs the replicated configuration store
// over gossip and measures the time until every node holds a write, and until
// every store is identical after a partition heals.
//
// Results print as tables, encode as JSON, and plot as SVG with [WriteSVG].
// Package sim/simcmd is the command line ("p2p sim").
package sim
