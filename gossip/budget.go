package gossip

// Budgets of failed signatures: an insider (a peer holding the cluster
// secret) can send a member list of thousands of entries with garbage
// signatures, each costing the node an ed25519 verification (about 70 µs): a
// 1 MiB list of 7,000 entries cost half a second of CPU, as often as the
// insider could send one. Two checks bound that:
//
//   - An entry about a member this node holds that cannot change anything by
//     the merge rules of learnRecord (an older incarnation; the held one with
//     a state that does not beat the held state, other than the record with
//     its introductions that the held copy lacks) is refused before any
//     signature check and counted (Stats.StaleRecords). Relayed old news is
//     normal, so this is not reported as an attack.
//   - Each peer that delivers entries (the sender of a member list, the
//     neighbour that relayed a membership broadcast) has a budget of
//     signature failures: Config.SignatureBudget of them at once, restored one
//     per Config.SignatureRefill. A verification that fails (the record's, or
//     an introduction's) spends one; one that succeeds spends nothing, so a
//     joiner handed thousands of genuine records checks them all. Once a
//     peer's budget is spent, the entries it delivers that would need a
//     verification are refused unverified and counted
//     (Stats.SignatureBudgetRefused) until it is restored; the records they
//     carry come again in later member-list exchanges.
//
// A member list names each member once: a second entry about a member whose
// record was verified earlier in the same list (an insider's own record at
// 7,000 increasing incarnations, each genuine) is refused unverified and
// counted (Stats.DuplicateRecords).
//
// A budget is kept as the time at which it is whole again (the generic cell
// rate algorithm): one time per peer, and a peer whose budget is whole again
// is the same as one never seen, so it is forgotten. At most
// maxBudgetPeers peers are tracked; while that many have budgets still
// spent, the others share one budget. An insider with many identities thus
// makes a node check at most (maxBudgetPeers+1) × SignatureBudget failing
// signatures at once, then (maxBudgetPeers+1) per SignatureRefill; its
// price is that honest peers not tracked meanwhile share the one budget (a
// flood of garbage broadcasts spends the budget of the honest neighbour
// that relays it, too).

import (
	"time"

	"github.com/p2p-go/p2p/peer"
)

// maxBudgetPeers bounds the peers whose spent budgets are tracked: far more
// than the peers that deliver entries to a node (its active view, and the
// few that sync with it), and (maxBudgetPeers+1) × DefaultSignatureBudget
// failing checks is about 0.15 s of CPU.
const maxBudgetPeers = 64

// signatureBudgets are the budgets of failed signatures of the peers that
// spent some.
type signatureBudgets struct {
	// whole is when each tracked peer's budget is whole again (later
	// than the last time it was looked at).
	whole map[peer.ID]time.Time
	// shared is the budget of the peers not tracked while maxBudgetPeers
	// are.
	shared time.Time
	// nextWhole is the earliest time in whole: before it, no tracked
	// budget can be forgotten.
	nextWhole time.Time
	// listing is set during a pass over a member list (see learnList);
	// verified are the members whose records were verified in it.
	listing  bool
	verified map[peer.ID]struct{}
}

// budgetOf returns when by's budget is whole again (zero, or not after
// now: it is whole), and whether by shares the budget of the peers not
// tracked. With maxBudgetPeers tracked, it first forgets those whole again.
func (c *Core) budgetOf(now time.Time, by peer.ID) (whole time.Time, shared bool) {
	b := &c.budgets
	if t, ok := b.whole[by]; ok {
		return t, false
	}
	if len(b.whole) >= maxBudgetPeers && !now.Before(b.nextWhole) {
		var next time.Time
		for id, t := range b.whole {
			if !now.Before(t) {
				delete(b.whole, id)
			} else if next.IsZero() || t.Before(next) {
				next = t
			}
		}
		b.nextWhole = next
	}
	if len(b.whole) >= maxBudgetPeers {
		return b.shared, true
	}
	return time.Time{}, false
}

// mayVerify reports whether by's budget allows one more signature check of
// what it delivered, and counts the entry refused when it does not. The
// zero ID (this node's own evidence) has no budget.
func (c *Core) mayVerify(now time.Time, by peer.ID) bool {
	if by.IsZero() {
		return true
	}
	if whole, _ := c.budgetOf(now, by); whole.Sub(now) <= time.Duration(c.cfg.SignatureBudget-1)*c.cfg.SignatureRefill {
		return true
	}
	c.stats.SignatureBudgetRefused++
	return false
}

// verifyFailed spends one failure of by's budget.
func (c *Core) verifyFailed(now time.Time, by peer.ID) {
	if by.IsZero() {
		return
	}
	whole, shared := c.budgetOf(now, by)
	whole = later(whole, now).Add(c.cfg.SignatureRefill)
	b := &c.budgets
	if shared {
		b.shared = whole
		return
	}
	if b.whole == nil {
		b.whole = map[peer.ID]time.Time{}
	}
	b.whole[by] = whole
	if b.nextWhole.IsZero() || whole.Before(b.nextWhole) {
		b.nextWhole = whole
	}
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
