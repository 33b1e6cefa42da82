// Package compose joins protocol cores into one overlay.Core, the one way
// the framework composes cores: package gossip (HyParView and Plumtree under
// the member list), internal/stack (the Broadcaster's core and the store's)
// and the simulator's Plumtree over HyParView all use it.
//
// A [Composer] holds parts, each a core registered by name with the wire
// ranges it owns (received messages of those ranges go to it, see
// wire.Router) and a routing function for its outputs. The routing function
// either emits an output out of the composition ([Composer.Emit]) or turns
// it into an input of another part ([Composer.Input]). Inputs wait in one
// FIFO work queue: [Composer.Run] steps the part at the head of the queue,
// routes every output of that step in order, and goes on until the queue is
// empty. NextDeadline is the earliest of the parts'.
package compose
