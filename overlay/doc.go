// Package overlay defines the vocabulary shared by protocol cores and the
// runtimes that drive them.
//
// A core is a state machine in the style of etcd's raft library: it owns no
// goroutine, socket or clock. The driver calls [Core.Step] with the current
// time and one input (a message from a peer, a link failure, a timer tick, or a
// core-specific local request); the core appends outputs (messages to send,
// links to open or close, and core-specific deliveries) that the driver takes
// with [Core.Drain]. [Core.NextDeadline] tells the driver when to step the core
// with a [Tick] next. The real runtime (package node) drives cores over a
// transport with real timers; the simulator (package sim) drives the same cores
// with a virtual clock and a modelled network, so a seeded run is repeatable.
package overlay
