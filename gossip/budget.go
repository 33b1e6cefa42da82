package gossip

// Signature checks an insider can cause: an insider (a peer holding the
// cluster secret) can send a member list of thousands of entries with
// garbage signatures, each costing the node an ed25519 verification (about
// 70 µs): a 1 MiB list of 7,000 entries cost half a second of CPU, as often
// as the insider could send one. Three checks bound that:
//
//   - An entry about a member this node holds that cannot change anything by
//     the merge rules of learnRecord (an older incarnation; the held one with
//     a state that does not beat the held state, other than the record with
//     its introductions that the held copy lacks) is refused before any
//     signature check and counted (Stats.StaleRecords). Relayed old news is
//     normal, so this is not reported as an attack.
//   - A member list names each member once: a second entry about a member
//     whose record was verified earlier in the same list (an insider's own
//     record at 7,000 increasing incarnations, each genuine) is refused
//     unverified and counted (Stats.DuplicateRecords).
//   - Each message this node handles may make it fail at most
//     Config.SignatureFailures signature checks (a record's, or an
//     introduction's). A message is one received member list, or one
//     membership broadcast that Plumtree delivers (a message that delivers
//     several, recovered ones say, counts each apart); any other input is
//     one message too. Once a message has failed that many checks, the rest
//     of its entries that would need a check are refused unverified and
//     counted (Stats.SignatureBudgetRefused); the next message starts
//     afresh. Checks that succeed never count: a joiner handed thousands of
//     genuine records checks them all.
//
// No honest node signs a record or an introduction that fails, so the cap
// costs honest traffic nothing: a forged broadcast that honest neighbours
// relayed (Plumtree relays before anyone can check) fails its checks as one
// message, and the same neighbours' next messages are checked in full. A
// hostile message costs at most the cap's failed checks plus one per valid
// record it carries, which is genuine news (or refused as stale or as a
// duplicate before its check). Nothing is kept from one message to the
// next: no per-peer state, no clock, nothing an insider with many
// identities could exhaust for others.
//
// Nor does a forged introduction reach an honest member list: introductions
// travel outside what their member signs, so anyone relaying a record can
// add some, and a node keeping all those of a record it adopts (it checks
// only two, or none in its join grace, from a member linked to it, or in a
// newer record of a member it holds) would hand them on, each costing a
// failed check to a node that does not hold the member yet: two in one
// list would use up its cap. So a node keeps of a record only the
// introductions it verified (see checkedWitnesses), at most Introductions,
// checked in order and under the same cap as the record: one identical to
// an introduction it holds, verified, on the member's record at the same
// address needs no check (a new incarnation at the same address costs no
// more than its record), an introduction by a member it does not hold is
// dropped unchecked (and checked again, within the same member list, once
// that member's record is in), and a forged one is dropped and counted
// (Stats.InvalidIntroductions). A held record's introductions are replaced
// only by more verified ones, and none is checked unless enough could be
// verified to do so: checks that succeed are not capped, and an insider
// would otherwise make a node spend one, message after message, on a
// valid introduction that replaces nothing. Honest member lists thus fail
// no check. An
// insider's own membership broadcast still reaches every node as it sent
// it (Plumtree relays before anyone checks): one forged introduction does
// not cut its checks short, two ahead of the valid ones do, as the insider
// could drop or replace the broadcast anyway.

import "github.com/p2p-go/p2p/peer"

// messageChecks is what a core keeps of the signature checks of the message
// it is handling.
type messageChecks struct {
	// failed counts the checks that failed.
	failed int
	// listing is set during a pass over a member list (see learnList);
	// verified are the members whose records were verified in it.
	listing  bool
	verified map[peer.ID]struct{}
}

// newMessage starts counting the failed checks of a new message, and
// returns those of the message handled so far, for endMessage to restore
// (a broadcast is delivered while the step that received it runs).
func (c *Core) newMessage() (outer int) {
	outer, c.checks.failed = c.checks.failed, 0
	return outer
}

// endMessage restores the count of the message that newMessage returned.
func (c *Core) endMessage(outer int) {
	c.checks.failed = outer
}

// mayVerify reports whether the message being handled may make this node
// check one more signature, and counts the entry refused when it may not.
func (c *Core) mayVerify() bool {
	if c.checks.failed < c.cfg.SignatureFailures {
		return true
	}
	c.stats.SignatureBudgetRefused++
	return false
}

// verifyFailed counts a failed check against the message being handled.
func (c *Core) verifyFailed() {
	c.checks.failed++
}
