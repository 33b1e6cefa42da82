// Package agent is the p2p daemon: one node of the network per machine,
// driven through a local HTTP API so that scripts and programs in any
// language can broadcast messages, follow membership and read, write and
// watch the replicated configuration store, as the agents of Serf and Consul
// let them.
//
// An Agent wraps a [p2p.Broadcaster] (HyParView membership with Plumtree
// broadcast; see the root package) and adds:
//
//   - configuration from a JSON file, P2P_* environment variables and flags,
//     flags winning over the environment, which wins over the file
//     ([LoadConfig], [Settings]);
//   - the HTTP API (docs/api.md): info, members, send, send-one, an event
//     stream (server-sent events), the store's get/put/delete/list and a
//     watch stream, and Prometheus metrics (the agent's own client_golang
//     registry, never the global one), on 127.0.0.1:6967 by default or a
//     unix socket; a bearer token is required off loopback;
//   - the node's name and tags, published in the store under
//     [NodesPrefix]+ID so that every agent can list them with the members;
//   - event handlers in the manner of Serf's: shell commands run for the
//     messages, membership changes or key changes their filter matches, with
//     the data on stdin and details in P2P_* variables, on a bounded pool
//     that drops (and counts) events rather than slowing the node ([Handler]);
//   - synced files: a file kept equal to a key's value, written atomically
//     ([SyncSpec]);
//   - reload on SIGHUP of the log level, name, tags, handlers and synced
//     files ([Agent.Reload]).
//
// A [Client] calls the API; the `p2p` command's client subcommands use it.
//
// The agent adds no protocol of its own: it runs the overlays of the
// papers the root package cites (Leitão et al., HyParView, DSN 2007, and
// Plumtree, SRDS 2007) and the store's last-writer-wins replication with
// anti-entropy.
package agent
