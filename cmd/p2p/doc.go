// Command p2p is the framework's binary: it runs a node, an agent with a
// local HTTP API, the agent's CLI, and the simulator.
package main
