// Package simcmd is the command line of the simulator: [Command] returns the
// "sim" cobra command that cmd/p2p mounts as "p2p sim", with one subcommand
// per scenario of package sim (broadcast, massfail, kademlia, kv). Each prints
// a readable table on stdout, a progress line on stderr for long runs, and
// optionally writes the full result as JSON (--json-out) and charts as SVG
// (--plot).
package simcmd
