// Package archtest holds the repository-wide architecture test: every
// package of the module has a doc.go with a package comment, and the protocol
// cores (gossip, hyparview, plumtree, kademlia, the store's core in kv, and
// internal/stack, which composes two of them) stay pure state machines: their
// non-test files import no network, file-system or runtime package, read no
// clock, use no global random source and start no goroutine. The package has
// no code of its own; only its test exists.
package archtest
