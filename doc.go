// Package p2p is a light peer-to-peer framework: programs join a network
// through any peer already in it (or start a new one), register reactors that
// are called for every message, send a message to everybody ([Broadcaster.Send])
// or to one neighbour ([Broadcaster.SendOne]), and answer the sender through
// [Message.Reply]. Data is JSON on the user's side; the framework encodes it.
//
// The [Broadcaster] overlay gives every member every message: HyParView keeps
// the membership (a few open, encrypted links per node, repaired when a
// neighbour fails) and Plumtree broadcasts along a spanning tree of those links,
// so that a message costs close to one transmission per node. Connections are
// TCP secured by a Noise XX handshake in which each node proves its ed25519
// identity; a cluster secret keeps outsiders out. Several secrets may be
// installed at once, so that a cluster rotates its secret without downtime:
// [Broadcaster.InstallKey], [Broadcaster.UseKey] and [Broadcaster.RemoveKey]
// apply a change on every member and report who applied it; each member keeps
// its keyring in its data directory ([KeyringFile]).
//
// Its reason to exist is to keep configuration consistent across many machines,
// with push, and with no central service to run: [Broadcaster.Store] is a
// replicated key/value store on every member, kept on disk. Every record
// carries its writer's signature, checked by every node, so no member can
// write in another's name; [Broadcaster.Revoke] shuts a member out of the
// cluster for good (any member may, unless Config.Admins is set).
//
// The [DHT] overlay is a Kademlia network with the same door (both types
// satisfy [Overlay]: Start, Joined, React, Send, SendOne, SendTo, Members,
// NodeStats, Close, with the same meaning), plus signed records
// ([DHT.Put], [DHT.Get]). Each type drives its protocol's state machines
// (packages gossip and kademlia) with the runtime of package node.
//
// A minimal program:
//
//	b, err := p2p.NewBroadcaster(p2p.Config{Bootstrap: []string{"10.0.0.1:6966"}})
//	if err != nil { ... }
//	defer b.Close()
//	b.React(func(m *p2p.Message) { fmt.Println(string(m.Data)) })
//	b.Start(ctx)
//	b.Send(ctx, map[string]any{"update": true, "token": 4})
package p2p
