// Package gossip is the core of the Broadcaster overlay: HyParView membership
// (package hyparview) and Plumtree broadcast (package plumtree) composed into
// one [overlay.Core], with a member list and direct messages on top.
//
// # Composition
//
// HyParView keeps a small active view of open links (the overlay's edges) and
// a larger passive view of backups. Each change of the active view is handed
// to Plumtree as a neighbour event, so that Plumtree's eager/lazy sets always
// span exactly the live links. By default (Config.Tree, TreeRootedRelay)
// Plumtree keeps a breadth-first tree from the smallest ID
// (plumtree.Config.RootedTree), which overlapping broadcasts from many
// senders cannot cut apart, instead of the paper's prune-on-duplicate
// (TreePaper), and the origin of a broadcast also sends it straight to the
// tree's root, at the address of the root's member record, which pushes it
// down the tree (plumtree.Config.RelayToRoot): the last node is at most one
// hop more than the root's eccentricity away. Every node of a network must
// use the same setting. HyParView and Plumtree are parts of the framework's
// one composer of cores (internal/compose, see compose.go): messages from
// peers go to the core that owns the wire range of their type code, and the
// member list's own messages (wire.RangeMembership) to this core. Every
// broadcast payload starts
// with a one-byte topic: topic 0 carries this package's membership events,
// the others belong to the layers above (the root package uses topic 1 for
// application messages, topic 2 for the configuration store and topic 3 for
// keyring operations).
//
// # Member list
//
// HyParView knows only a node's neighbours; users expect the whole member list
// (as Serf gives it). Each node announces itself with an ALIVE event carrying
// an incarnation number (its join time in nanoseconds, so a restarted node
// always announces a higher one) broadcast through Plumtree. A node that loses
// an active neighbour probes it directly. After one probe unanswered for
// ProbeTimeout it broadcasts a SUSPECT claim and probes again; after the
// second it announces the member failed and broadcasts a DEAD event. Both
// events take a message ID derived from their content, so that all the
// neighbours that noticed the failure send one broadcast between them.
//
// # Suspicion
//
// A node does not believe another node's SUSPECT or DEAD claim about a
// member it holds alive, as in Lifeguard (Dadgar et al., 2018): it
// broadcasts a SUSPECT claim (content-derived ID: one broadcast whoever
// sends it), which reaches the member, and tells the member directly when
// it is a neighbour; the member refutes it with a higher incarnation, as in
// SWIM, which cancels the suspicion everywhere. Only a claim left unrefuted
// for two ProbeTimeouts (one, once a node claims the member dead) makes the
// node announce the member failed; nor do a node's own unanswered probes,
// when the member has refuted a claim since they started (it is alive, only
// slow to answer). So the dead claims that the two sides of
// a healed partition carry about each other, some about members this side
// reached all along, are refuted rather than announced. Every
// SyncInterval a node exchanges its member list with a random neighbour
// (push-pull), which repairs anything a broadcast missed and merges the two
// sides of a healed partition. The two compare digests of their lists by
// bucket (members grouped by the first bits of their IDs) and send each
// other only the entries of the buckets that differ (see table.go). DEAD entries are kept for DeadRetention so that
// a stale ALIVE cannot resurrect them.
//
// A crashed node drops out of every member list within: the time for its
// neighbours to notice (at once when its TCP connections reset; otherwise
// HyParView's FailureTimeout of 4 s plus one 1 s keepalive interval), plus
// two ProbeTimeouts (2 × 2 s; at once when the probe cannot even be
// dialled), the first of which ends with a SUSPECT broadcast that starts the
// other members' suspicion timers, plus one broadcast: about 9 seconds with
// the defaults for a host lost without a reset (10 s is the bound the tests
// hold), about 2 seconds (one ProbeTimeout of suspicion) for a crashed
// process whose host resets its connections. A random probe (of a member no
// lost link points at) unanswered while its link stays up is first sent
// again without any claim, so that a lost probe or reply costs the network
// no broadcast; a member found only that way drops out one ProbeTimeout
// later. A node that declares a death
// also syncs member lists again within a second, so that a node the
// broadcasts missed while the overlay repairs hears the claim within
// seconds, not a SyncInterval.
//
// # Signed member records
//
// With a Config.Key (every real node has one), a member's own facts (its
// address, incarnation, name and tags, and that it left) travel in a record
// it signed with its ed25519 key, whose hash is its ID; every node checks
// the signature before it uses a record (once: a record already held is not
// checked again), and a member is adopted only from its own record, never
// from a link or a list alone. A claim that a member is suspect or dead may
// come from anyone, but it carries the signature of the alive record it is
// about, so it names an incarnation the member really had: nobody can claim
// a death at an incarnation above the member's own. A node that hears such a
// claim about itself counts it (Stats.IncarnationAttacks), reports it once
// (IncarnationAttack) and refutes it with its own next incarnation, which
// saturates rather than wraps. Records that fail the check are refused and
// counted (Stats.InvalidRecords). Nor does a node dial an address that no
// signed record vouches for: HyParView's messages and links to a peer it
// heard of from others (a forwarded join, a shuffle) go out only over a link
// that peer opened, or to the address of its own record, held for a few
// seconds while that record may still be on its way, then dropped and
// counted (Stats.UnvouchedDials). An insider can still make keys and sign
// records for members that do not exist; since one address is one
// listener, a live record at an address that another live member (or this
// node) holds is refused and counted (Stats.AddressTaken), unless its member
// has a live link from that address (see addresses.go). Nor does a node
// adopt a member it does not hold on anyone's word: the member's record must
// carry two introductions, signed by members the node holds that had a live
// link with the member at its address, so one insider cannot introduce
// anyone; a joiner, which knows no witness yet, believes what it hears for
// its first Config.JoinGrace (see introductions.go). A node keeps, and
// hands on, only the introductions it verified: a forged one is dropped and
// counted (Stats.InvalidIntroductions). Nor can an insider make
// a node check signatures by the thousand: an entry about a held member that
// could change nothing is refused before any check (Stats.StaleRecords), and
// each message (a member list, a membership broadcast) may fail at most
// Config.SignatureFailures checks, past which the rest of its entries that
// need one are refused unverified (Stats.SignatureBudgetRefused; see
// budget.go). No honest message carries a forged record, and nothing
// carries over to the next message. A core without a key
// (simulations) neither signs nor checks.
//
// # Islands
//
// HyParView can leave groups of nodes whose active views are full among
// themselves with no link between the groups (a mass failure repaired from
// passive views can do it), while every member still answers probes. Probes
// and their replies carry the IDs of a few broadcasts the sender delivered 5
// to 30 seconds ago; a node that never saw one of them is in another island,
// joins again through the peer that told it (linking the islands), and
// broadcasts the IDs it missed so that the rest of its island does not do
// the same. In a quiet network, a node that has delivered nothing for a
// ProbeInterval sends a small beacon with probability one in the number of
// members: about one beacon per ProbeInterval across the network, none while
// other broadcasts flow. Two islands are thus joined within seconds of the
// first broadcast of either, at the cost of a few bridge joins, whatever
// the network's size.
//
// # Memory
//
// Every node holds an entry for every member: N² entries in all, 10⁸ in a
// 10,000-node simulation. A member's signed record is immutable, so the
// cores of one process share one copy of each record version (interned by
// content; a record no core holds is collected), a membership broadcast's
// body is decoded once per process, and a node's member table holds only a
// pointer and a state per member (about 13 bytes). The random probe round
// walks the table's slots in a random order rather than a copy of the
// member list. See table.go.
package gossip
