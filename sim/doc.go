// Package sim simulates thousands of nodes in one process by driving the
// protocol cores — the very [overlay.Core] code real nodes run — with a
// virtual clock and a discrete-event model of the network.
//
// # Engine
//
// The engine is package [github.com/p2p-go/p2p/sim/engine], which imports no
// core so that the cores' own tests can use it; sim re-exports its names
// ([Sim], [Config], [Latency], ...). A [Sim] holds a heap of events ordered by
// (virtual time, sequence number), so a run with a given seed is repeatable
// exactly; nodes step any [overlay.Core], and the network model offers
// latency, loss, partitions, crashes and Poisson churn. Its package comment
// describes the model. With Config.Workers ≥ 2 (the --workers flag of "p2p
// sim broadcast", "massfail" and "kademlia"; its default is the number of
// CPUs, at least 2) the engine steps the nodes of each lookahead window on
// several goroutines: a run is then repeatable for a given seed whatever the
// number of workers, but is not event for event the sequential run (Workers
// 0 or 1) with that seed. [RunKV] always runs sequentially: its observer
// steps nodes.
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
