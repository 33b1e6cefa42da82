// Package scenario runs script-driven tests of the protocol cores: files of
// commands, each followed by the output it must print, in the style of
// etcd-io/raft's rafttest and cockroachdb's datadriven (written anew here).
//
// It is a test-only package: only _test.go files import it, so it is never
// compiled into the library.
//
// # Scripts
//
// A script (testdata/scripts/*.txt in a core's package) is a sequence of cases. A
// case is one command line (a name, then arguments separated by spaces; an
// argument may be key=value), a line holding exactly "----", and the
// expected output, which ends at the first blank line or at the end of the
// file. Lines starting with '#' and blank lines between cases are comments
// and are kept as they are. Run the tests with -rewrite to write the output
// each command actually printed in place of the expected output:
//
//	go test ./hyparview -run TestScripts -rewrite
//
// and review the change with git diff: a script is a test only while its
// expected output is read and agreed with.
//
// # The network
//
// [Net] drives any [overlay.Core] on the simulator's engine ([engine.Sim]): a
// virtual clock, a fixed one-way latency of 20 ms, per-link ordering, crashes
// and partitions. Nodes are named a, b, c, ... in the order they are added.
// A core package supplies an [Adapter] (how to build a core, join two nodes,
// send a payload, describe an output, and its own state-printing commands);
// [Net.Handle] runs the commands every core shares:
//
//	nodes N [key=value...]     add N nodes (options go to Adapter.New)
//	join a [b]                 a joins through b (a may be a list: b,c,d); no b: a starts a network
//	send a payload             a sends payload (a broadcast, a write...)
//	partition a,b | c,d        split the network; unnamed nodes form one more group
//	heal                       remove the partition
//	crash a                    crash a abruptly
//	drop a b Type [n=1]        lose the next n messages of Type from a to b
//	deliver                    advance one latency: messages in flight arrive
//	tick 5s                    advance the virtual clock
//	run-until-quiet [max=1m]   advance until no message is in flight
//	messages [Type...]         messages delivered since the last messages/counts
//	                           (only those of the types named, if any)
//	counts                     the same, counted by type
//	outputs [sorted]           outputs recorded (deliveries, events) since the last call,
//	                           by node, each node's in the order it produced them
//	                           (sorted: in alphabetical order)
//	reset                      forget the messages and outputs recorded so far
//	time                       virtual time since the start
//
// Every printout is deterministic: peers are printed by name, sorted where
// the order carries no meaning.
package scenario
