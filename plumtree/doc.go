// Package plumtree implements Epidemic Broadcast Trees (Plumtree; J. Leitão,
// J. Pereira, L. Rodrigues, "Epidemic Broadcast Trees", SRDS 2007, and the
// extended technical report DI-FCUL TR-07-14) as a state machine that
// satisfies [overlay.Core].
//
// # Algorithm
//
// Every node splits its neighbours (supplied by a membership overlay such as
// HyParView through [NeighborUp] and [NeighborDown]) into two sets. Payloads
// are pushed eagerly, as a [Gossip] message, to the eagerPushPeers; only the
// message ID is announced, in an [IHave] message, to the lazyPushPeers. All
// neighbours start eager, so the first broadcast floods the overlay. A node
// that receives a payload it has already seen moves the sender to its lazy set
// and answers [Prune], which moves it to the sender's lazy set too. After one
// broadcast the eager links form a spanning tree of the overlay and later
// broadcasts cost N−1 payload transmissions (a relative message redundancy,
// RMR = payloads/(N−1) − 1, near 0).
//
// The lazy links repair the tree. A node that hears an announcement for a
// payload it lacks starts timer 1 ([Config.IHaveTimeout]); if the payload has
// not arrived when it expires, the node sends [Graft] to the first announcer,
// which makes the link eager again and answers with the payload, and starts
// timer 2 ([Config.GraftTimeout], about one round trip) for the next
// announcer. Grafts go round the announcers until the payload arrives or a
// bounded number of attempts has been made.
//
// The optional optimisation of the paper (section 3.8) is available through
// [Config.OptimizationThreshold]: when a lazy neighbour announces a payload
// the node already received, and the announcement's hop count is at least the
// threshold smaller than the hop count of the payload received, the node
// grafts the lazy link and prunes the eager one, so the tree drifts towards
// shorter paths. It is off by default.
//
// # The rooted tree
//
// With [Config.RootedTree] the eager links are not shaped by duplicates but
// kept as one breadth-first spanning tree of the overlay, rooted at the node
// with the smallest ID: every node advertises to its neighbours, in a [Tree]
// message sent only when it changes, the root it knows and its hop distance
// to it; its parent is the neighbour offering the smallest root, then the
// shortest distance (ties keep the current parent, then go to the smaller
// ID); its eager peers are its parent, the neighbours that chose it, and the
// new neighbours not heard from yet (eager, as every new link in the paper). A
// duplicate payload then prunes nothing, and GRAFT and PRUNE repair or refuse
// single payloads without reshaping the tree.
//
// The paper's rule shapes the tree by the origin of each broadcast: a
// duplicate prunes the edge where two copies of that broadcast meet. With
// broadcasts from many origins in flight at once, each prunes a different
// edge of the same cycle, the eager links fall apart into pieces that GRAFTs
// join again after timer 1, and the tree that results is several times
// deeper than a breadth-first one (measured in BENCHMARKS.md). The rooted
// tree's paths are at most twice the root's eccentricity. A root that fails
// is forgotten once the distances to it, which grow around the loops its stale
// advertisements follow, reach [MaxTreeDistance]; meanwhile GRAFTs carry the
// broadcasts. Every node of a network must use the same setting.
//
// The two ends of a link learn of it separately (over a real transport one
// may learn seconds after the other, or keep a link the other has dropped),
// so the tree mends disagreements: a node answers tree traffic from a peer it
// does not count as a neighbour (a TREE, or a payload pushed to it as to a
// tree link) with a "no route through me" advertisement at MaxTreeDistance,
// so that the peer does not keep it as parent; a node whose parent announces
// a message instead of pushing it tells the parent again that it is its
// child; a neighbour that pushes payloads without being a tree link is told
// this node's real relation to it. Without these a subtree could wait for a
// parent that did not know it, and receive every broadcast by GRAFT only.
//
// A broadcast from a random origin crosses the shared tree from there: its
// last node can be as far as the tree's diameter, twice the root's
// eccentricity. With [Config.RelayToRoot] the origin also sends the payload
// straight to the root (a [RelayToRoot] output, which the host carries over a
// direct connection), which pushes it down the tree, as PIM-SM's shared trees
// do with a rendezvous point: the last node is then at most one hop more than
// the root's eccentricity away, for one extra payload and the few duplicates
// where the two copies meet. A root that is unknown, unreachable or lying
// costs only that payload: the origin's own push and the lazy links still
// carry the broadcast.
//
// # Differences from the paper
//
// Announcements are batched: the IDs announced to one peer are gathered for
// [Config.LazyBatchInterval] and sent as one IHAVE carrying many (ID, round)
// pairs, because one IHAVE per message per lazy link would cost more bytes
// than the payload itself for small messages. The interval adapts: while a
// steady flow goes by (more than one message announced per batch) and
// nothing suggests a loss, it doubles at each batch up to
// [Config.MaxLazyBatchInterval] (80 ms), since in a stable tree the
// announcements recover nothing and each IHAVE is a message to send, receive
// and step; a GRAFT sent or received, an announcement of a message not
// received, or a neighbour coming or going brings it back to
// LazyBatchInterval at once, together with the batch being gathered. A lost
// payload is then announced, at worst, MaxLazyBatchInterval after it went by
// rather than LazyBatchInterval. Grafts due at the same tick for the same
// peer are also sent in one GRAFT.
//
// The paper assumes links that lose nothing while they are up (TCP): a
// payload is lost only with its link, which the membership overlay reports.
// A node whose neighbours all push to it eagerly hears no announcement, so
// over a transport that can lose single messages it would miss a payload lost
// on every one of those links. [Config.AnnounceToEager] closes that gap by
// announcing to eager neighbours too, for about one more announcement per node
// per message. It is off by default.
//
// # Recovery
//
// The lazy links repair a tree whose payload was lost on a link that stays
// up. A node that had no link at all to the origin's part of the overlay
// while a message went by (its neighbours crashed, a mass failure split the
// overlay into islands) hears no announcement of it, ever, even once the
// membership overlay has given it new links. So each node keeps the payloads
// of recent broadcasts (the recovery window: at most [Config.PayloadTTL],
// [Config.PayloadCacheSize] messages and [Config.PayloadCacheBytes] bytes;
// by default a minute, 1,024 messages, 16 MiB), and every new link starts
// with both ends sending a [Summary]: the IDs and send times of the payloads
// they keep (about 27 bytes per message). Each end treats the IDs it has not
// seen as announced by the other and grafts them at once; a recovered
// payload is delivered and passed on as any other, so the whole island behind
// the new link receives it. [Stats].MessagesRecovered counts them.
//
// [Config.Expendable] names payloads that give up their place first when
// the cache is full. The Broadcaster names its membership events so: a mass
// failure makes the survivors announce hundreds of deaths within seconds,
// which would otherwise fill the 1,024 places and push out of the window,
// seconds after they were sent, the messages that a node cut off meanwhile
// must recover (its member-list exchanges repair the membership events it
// missed).
//
// What is recovered: every message sent while a running node was cut off,
// as long as a node it links to afterwards (or a node behind that one) still
// keeps the payload. What is not: messages older than the window, and
// messages sent before the node started. A node that joins, or restarts,
// receives only what is broadcast after it started (its first Step): a
// restarted node would otherwise deliver again what it delivered before, and
// a newcomer needs state, which the store gives, rather than a replay. The
// send times are the origins' clocks, so that boundary is exact only to
// within the clocks' skew.
//
// A node does not deliver its own broadcasts to itself, and a [Broadcast]
// whose ID was already seen (for instance a content-derived ID that another
// node broadcast first) is dropped, so the application sees each message
// exactly once per node. Every cache is bounded in size and age; the
// exactly-once guarantee holds while a message is younger than
// [Config.SeenTTL] and among the last [Config.SeenCacheSize] seen. The
// recovery window lies inside it: PayloadTTL may not exceed SeenTTL, nor
// PayloadCacheSize SeenCacheSize.
//
// # Send times and hop counts
//
// A GOSSIP carries its origin's send time. A receiver refuses one sent
// [Config.MaxClockSkew] or more in its future, or SeenTTL − MaxClockSkew or
// longer ago ([Stats].RefusedFuture, [Stats].RefusedStale): a message
// accepted once stays in the seen cache until any replay of it is old enough
// to be refused, so a peer replaying a broadcast after the seen cache forgot
// it gets it refused rather than delivered again (as long as the seen cache
// is not overflowed: it holds [Config.SeenCacheSize] IDs). Clocks must agree
// to within MaxClockSkew (30 s by default). A hop count (round) above
// [MaxHops] is clamped to it and counted ([Stats].HopsClamped).
//
// # Origin signatures
//
// Every field of a GOSSIP is the relay's word: any node on the path could
// change the payload or claim another origin. With [Config.SigningKey] a
// node signs its broadcasts with its ed25519 identity key (whose SHA-256 hash
// is its node ID), over the origin (ID and address), message ID, send time
// and payload; with [Config.RequireSignatures] a node verifies that
// signature before delivering or relaying a message, and refuses and counts
// ([Stats].RefusedSignature) any message that lacks it. A forged copy never
// enters the seen cache, so it cannot shadow the genuine message. Both are
// off by default: a verification costs more CPU than the rest of a delivery.
//
// Messages from a peer that is not a current neighbour are accepted for
// delivery (a link may come up on one side before the other), but they do
// not change the eager and lazy sets and are never answered, so the core
// never makes the driver dial a peer the membership overlay did not choose.
// [overlay.LinkDown] is ignored: the membership overlay decides who is a
// neighbour and reports it with [NeighborDown].
//
// # Encoding
//
// GOSSIP, IHAVE, GRAFT, PRUNE and SUMMARY encode and decode themselves
// without reflection (codec.go, see package wire's BodyAppender and
// BodyDecoder): the same bytes as the reflective CBOR codec, and the same
// inputs accepted, which differential fuzz and property tests check.
//
// # Use
//
// The driver calls [Core.Step] with the current time and one input ([Broadcast],
// [NeighborUp], [NeighborDown], [overlay.Received] carrying a message of this
// package, or [overlay.Tick] once [Core.NextDeadline] has passed; the first
// Step marks when the node started, so a driver steps the core, with a Tick
// if nothing else, when the node starts), then takes
// the outputs with [Core.Drain]: [overlay.Send] messages and [Deliver]
// notifications. Messages in outputs are shared between several Sends and
// with the core's caches: they must be encoded or read, never modified.
package plumtree
