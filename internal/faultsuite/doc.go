// Package faultsuite is the project's own fault suite: tests that run real
// `p2p agent` processes, one per Linux network namespace, and inject faults
// from outside as an operator's network would: a partition into two halves
// and its heal, one node cut off and reconnected, SIGKILL of half and of
// three quarters of the agents, a host lost without a TCP reset, a restart of
// the whole cluster and of a group holding every bootstrap address, and
// agents with another cluster secret knocking at the door.
//
// The tests build the network themselves: a namespace holding two bridges
// (br0, and br1 for the far side of a partition) and, per agent, a namespace
// with one veth link to br0 and an address in 10.250.0.0/24. The addresses
// exist only inside those namespaces; the root namespace gets no interface
// and no route. A partition moves bridge ports from br0 to br1; a cut brings
// a port down; neither resets a TCP connection, as a real network fault
// would not. The test process reaches each agent's HTTP API through a unix
// socket in the agent's data directory (file-system sockets do not belong to
// a network namespace), so a cut link never cuts the test's view of an
// agent: every agent's /v1/events stream is recorded throughout.
//
// The tests need root on Linux and the ip command (iproute2) with network
// namespaces; elsewhere they skip and say why. They live in norace_*_test.go
// files: CI runs them once, in the run without the race detector. Every
// namespace's name starts with "p2pft-<pid>-", and the suite removes, before
// it starts, what a run whose process is gone left behind.
//
// Run them with
//
//	go test -run . -v ./internal/faultsuite
//
// Each test prints its figures (heal times, fail-event counts, delivery
// ratios, recoveries) with t.Logf, and TestMain prints them all in one table
// at the end; BENCHMARKS.md records them.
package faultsuite
