// Package intern shares immutable values among the protocol cores of one
// process: a weak table that hands out one copy per key while some core
// holds it, and a bounded memo of values computed from keys.
//
// A process that runs many cores (the simulator runs thousands) would
// otherwise keep one copy of the same signed member record, or decode the
// same broadcast body, once per core. The values must be immutable and a
// pure function of their key, so that sharing them changes nothing a core
// computes: the cores stay deterministic state machines. The locks here are
// the only shared state between cores, and they are held for a map access.
package intern
