package gossip

// Introductions (issue 10): a signed record proves that its member's key
// stated it, not that the member exists. An insider can make a key per
// invented member, sign a record for each at addresses of its choice, and
// hand them to every node in one member list; the nodes would adopt them,
// list them to their users and dial their addresses to probe them, until
// the probes found them dead. No node can tell a member it never reached
// from an invented one but by dialling it, or by taking a witness's word.
//
// So, with a key, a node adopts a member it does not hold yet only on the
// word of two witnesses it already holds. A witness is a member with a live
// link to the new member (the handshake proved the new member's ID) from the
// address of the new member's record: it signs (introductionDomain, ID,
// address) and sends the signature to the member (Vouch). The member keeps
// the first two introductions of members it holds alive in its own record's
// Witnesses (outside what it signs: anyone may carry them, no one can forge
// them) and announces the record again once it has two. A joiner's first
// neighbours (its contact and the nodes its forwarded join reached) are its
// witnesses, so a joiner is introduced within a few round trips of its
// join, at the cost of one more membership broadcast. One insider can sign
// only one introduction, its own: its invented members are never adopted,
// listed or dialled; two colluding insiders could introduce them.
//
// What a node believes without introductions:
//   - a member with a live link to it from the record's address (its
//     neighbours: it witnesses them itself);
//   - the member list of the first full sync it receives after it joins, from
//     a neighbour (its contact or one of the nodes its join reached): a
//     joiner knows no witness yet, so it starts from a neighbour's word, as
//     it starts from the contact the operator gave it;
//   - members it already holds, in any state: a new incarnation, an address
//     change or a departure needs only the member's signature.
//
// Whichever way it adopts a member, a node keeps only the introductions of
// its record that it verified, at most Introductions: anyone relaying a
// record can add introductions to it, and a node must not hand on forged
// ones, each of which would cost a failed check to the nodes that adopt
// from its member lists (see budget.go and checkedWitnesses).
//
// A record refused for want of introductions is counted
// (Stats.Unintroduced). It still vouches for a few seconds for HyParView's
// messages to its member (see vouch.go): a joiner's first record reaches the
// nodes its forwarded join asks to link to it before its witnesses do.

import (
	"bytes"
	"slices"
	"time"

	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
)

const (
	// introductionDomain separates introduction signatures from every
	// other use of a node's key.
	introductionDomain = "p2p/gossip introduction v1\x00"
	// Introductions is the number of witnesses a record must carry for a
	// node to adopt a member it does not hold (see above).
	Introductions = 2
	// MaxWitnesses bounds the witnesses an entry may carry.
	MaxWitnesses = 4
	// maxVouches bounds the introductions a node keeps for itself.
	maxVouches = 8
	// maxUnintroduced bounds the refused records remembered (for
	// vouched), the oldest forgotten first.
	maxUnintroduced = 256
	// maxListPasses bounds the passes over one member list (see
	// learnList).
	maxListPasses = 4
)

// Witness is one member's introduction of another: By's signature of the
// introduced member's ID and address.
type Witness struct {
	_         struct{} `cbor:",toarray"`
	By        peer.ID
	Signature []byte
}

// Vouch carries a node's introduction of the peer it is sent to (Signature),
// or, empty, asks the peer for one.
type Vouch struct {
	_         struct{} `cbor:",toarray"`
	Signature []byte
}

// introductions is what a core keeps of introductions.
type introductions struct {
	// vouches are the introductions of this node, in the order they
	// came from their witnesses' links (checked once the witness's record
	// is held: it may trail the introduction).
	vouches []vouch
	// sent remembers to whom (and at which address) this node sent its
	// introduction, so that it sends one per link, not one per message.
	sent map[peer.ID]string
	// unintroduced are records refused for want of introductions, with
	// when they stop vouching for HyParView's messages.
	unintroduced map[peer.ID]unintroducedRecord
	// deferred, when set, collects the entries of the list being learnt
	// that were refused for want of introductions, to try them again
	// once the others are in (see learnList).
	deferred *[]Entry
	// retry, when set, collects the entries of the list being learnt
	// that were kept without introductions by members this node did not
	// hold yet, to check those again once the others are in.
	retry *[]Entry
}

type vouch struct {
	w       Witness
	checked bool // the signature was verified
}

type unintroducedRecord struct {
	addr  string
	until time.Time
}

// introductionBytes returns what a witness signs for the member id at addr.
func introductionBytes(id peer.ID, addr string) []byte {
	buf := make([]byte, 0, len(introductionDomain)+peer.IDLen+4+len(addr))
	buf = append(buf, introductionDomain...)
	buf = append(buf, id[:]...)
	return appendString(buf, addr)
}

// validWitness reports whether w is an introduction, by a member this node
// holds (in any state: a record kept for DeadRetention still gives its key),
// of e's member at e's address.
func (c *Core) validWitness(e Entry, w Witness) bool {
	key := c.witnessKey(e, w)
	return key != nil && c.witnessSigned(key, e, w)
}

// witnessKey returns the key of w's member when it is a member this node
// holds other than e's and this node's own, nil otherwise.
func (c *Core) witnessKey(e Entry, w Witness) []byte {
	if w.By == e.Peer.ID || w.By == c.cfg.Self.ID {
		return nil
	}
	m, ok := c.members.get(w.By)
	if !ok || len(m.rec.entry.PublicKey) == 0 {
		return nil
	}
	return m.rec.entry.PublicKey
}

// witnessSigned reports whether w's signature, checked with key, introduces
// e's member at e's address.
func (c *Core) witnessSigned(key []byte, e Entry, w Witness) bool {
	c.stats.SignaturesChecked++
	return peer.Verify(key, introductionBytes(e.Peer.ID, e.Peer.Addr), w.Signature)
}

// checkedWitnesses returns the introductions of e that this node keeps, in
// e's order: at most Introductions, by distinct members, each one verified
// with its member's key (a member this node holds, other than e's), or
// identical to one of held's, the record this node holds of e's member (nil
// if none), at the same address: those were verified when they came. A
// node never stores, and so never relays, an introduction it has not
// verified (see budget.go). With own, this node's own introductions of e's
// member, checked with its own key, are kept too (not when it adopts a
// member on others' word). need is how many e must yield for the caller
// to keep them (Introductions to adopt a member on introductions, one more
// than held carries to replace it): no check is made unless that many
// introductions could be verified, and checking stops once too few are
// left to reach it: checks that succeed, which the message's cap does not
// count, are spent in vain only beside one that fails. Checks
// that fail count against the message being handled
// (Stats.InvalidIntroductions); refused reports that checking stopped
// because that message already failed its Config.SignatureFailures
// checks. unheld reports an introduction skipped because this node does
// not hold its member (a later entry of the member list being learnt may
// bring it). A core without a key keeps them all and checks nothing.
func (c *Core) checkedWitnesses(e Entry, held *record, need int, own bool) (kept []Witness, refused, unheld bool) {
	if c.cfg.Key == nil {
		return e.Witnesses, false, false
	}
	// The introductions that could be verified, with the key that
	// verifies each (nil: held verified already).
	type candidate struct {
		w   Witness
		key []byte
	}
	var buf [MaxWitnesses]candidate
	candidates := buf[:0]
	for _, w := range e.Witnesses {
		if w.By == c.cfg.Self.ID && !own {
			continue
		}
		if held != nil && held.entry.Peer.Addr == e.Peer.Addr && slices.ContainsFunc(held.entry.Witnesses, func(o Witness) bool {
			return o.By == w.By && bytes.Equal(o.Signature, w.Signature)
		}) {
			candidates = append(candidates, candidate{w: w})
			continue
		}
		key := c.witnessKey(e, w)
		if key == nil && w.By == c.cfg.Self.ID {
			key = c.cfg.Key.Public()
		}
		if key == nil {
			unheld = unheld || w.By != e.Peer.ID
			continue
		}
		candidates = append(candidates, candidate{w: w, key: key})
	}
	for i, cand := range candidates {
		if len(kept) == Introductions || len(kept)+len(candidates)-i < need {
			break
		}
		if slices.ContainsFunc(kept, func(o Witness) bool { return o.By == cand.w.By }) {
			continue
		}
		if cand.key != nil {
			if !c.mayVerify() {
				return kept, true, unheld
			}
			if !c.witnessSigned(cand.key, e, cand.w) {
				c.stats.InvalidIntroductions++
				c.verifyFailed()
				continue
			}
		}
		kept = append(kept, cand.w)
	}
	return kept, false, unheld
}

// withWitnesses returns the shared record of e carrying the witnesses kept
// (rec, when the caller has e's, if nothing was dropped).
func withWitnesses(e Entry, rec *record, kept []Witness) *record {
	if sameWitnesses(kept, e.Witnesses) {
		if rec == nil {
			rec = internRecord(e)
		}
		return rec
	}
	e.Witnesses = kept
	return internRecord(e)
}

// needsNoIntroduction reports whether e's member may be adopted without
// introductions: a core without a key, a node in its first JoinGrace, or a
// live link from the record's address.
func (c *Core) needsNoIntroduction(now time.Time, e Entry) bool {
	if c.cfg.Key == nil || !c.joined || now.Sub(c.joinedAt) < c.cfg.JoinGrace {
		return true
	}
	addr, ok := c.linked[e.Peer.ID]
	return ok && addr == e.Peer.Addr
}

// mayBelieve reports, without checking any signature, whether e may be
// believable: its member is held, or believable does not fail at once.
func (c *Core) mayBelieve(now time.Time, e Entry) bool {
	if c.needsNoIntroduction(now, e) {
		return true
	}
	if _, ok := c.members.get(e.Peer.ID); ok {
		return true
	}
	held := 0
	for i, w := range e.Witnesses {
		if w.By == e.Peer.ID || w.By == c.cfg.Self.ID || slices.ContainsFunc(e.Witnesses[:i], func(o Witness) bool { return o.By == w.By }) {
			continue
		}
		if _, ok := c.members.get(w.By); ok {
			held++
		}
	}
	return held >= Introductions
}

// refuseUnintroduced counts a record refused for want of introductions and
// remembers, for a few seconds, that it vouches for its address.
func (c *Core) refuseUnintroduced(now time.Time, e Entry) {
	if c.intro.deferred != nil {
		*c.intro.deferred = append(*c.intro.deferred, e)
		return
	}
	c.stats.Unintroduced++
	u := &c.intro
	if u.unintroduced == nil {
		u.unintroduced = map[peer.ID]unintroducedRecord{}
	}
	if _, ok := u.unintroduced[e.Peer.ID]; !ok && len(u.unintroduced) >= maxUnintroduced {
		var oldest peer.ID
		var first time.Time
		for id, r := range u.unintroduced {
			if first.IsZero() || r.until.Before(first) || r.until.Equal(first) && id.Compare(oldest) < 0 {
				oldest, first = id, r.until
			}
		}
		delete(u.unintroduced, oldest)
	}
	u.unintroduced[e.Peer.ID] = unintroducedRecord{addr: e.Peer.Addr, until: now.Add(vouchWait)}
}

// retryWitnesses remembers, while a member list is learnt, an entry kept
// without some of its introductions because this node did not hold their
// members: a later entry of the list may bring them (see learnList).
func (c *Core) retryWitnesses(e Entry) {
	if c.intro.retry != nil {
		*c.intro.retry = append(*c.intro.retry, e)
	}
}

// recentlyRefused reports whether an unintroduced record of p at p's address
// arrived less than vouchWait ago.
func (c *Core) recentlyRefused(p peer.Info) bool {
	r, ok := c.intro.unintroduced[p.ID]
	return ok && r.addr == p.Addr && c.now.Before(r.until)
}

// expireUnintroduced forgets the refused records that vouch no more.
func (c *Core) expireUnintroduced(now time.Time) {
	for id, r := range c.intro.unintroduced {
		if !now.Before(r.until) {
			delete(c.intro.unintroduced, id)
		}
	}
}

// learnList merges the entries of a member list from, and reports whether
// any was news. An entry refused for want of introductions is tried again
// once the rest of the list is in: its witnesses may come later in it.
func (c *Core) learnList(now time.Time, entries []Entry, from peer.Info) bool {
	news := false
	pending := entries
	for pass := 0; pass < maxListPasses && len(pending) > 0; pass++ {
		var deferred, retry []Entry
		var adopted []peer.ID
		c.intro.deferred = &deferred
		c.intro.retry = &retry
		c.checks.listing = true
		clear(c.checks.verified)
		for _, e := range pending {
			if !validEntry(e) || !c.learn(now, e, false, from) {
				continue
			}
			news = true
			if c.cfg.Key != nil {
				adopted = append(adopted, e.Peer.ID)
			}
			if m, ok := c.members.get(e.Peer.ID); ok && e.State == StateLeft && e.Peer.ID == from.ID {
				// A neighbour leaving says so directly: spread it,
				// as kept (only the introductions verified).
				c.announce(m.entry())
			}
		}
		c.intro.deferred, c.intro.retry = nil, nil
		c.checks.listing = false
		// Try again only the entries that a member adopted in this
		// pass introduced: the others would fail as they did. The same
		// goes for the introductions of entries kept without them.
		introducedByAdopted := func(e Entry) bool {
			return slices.ContainsFunc(e.Witnesses, func(w Witness) bool { return slices.Contains(adopted, w.By) })
		}
		pending = pending[:0:0]
		for _, e := range deferred {
			if introducedByAdopted(e) {
				pending = append(pending, e)
			} else {
				c.refuseUnintroduced(now, e)
			}
		}
		for _, e := range retry {
			if introducedByAdopted(e) {
				pending = append(pending, e)
			}
		}
	}
	for _, e := range pending {
		c.refuseUnintroduced(now, e)
	}
	c.checks.verified = nil
	return news
}

// vouchFor sends this node's introduction to the member id, once per link:
// when this node holds it alive at the address of its live link, and its
// record does not carry enough introductions yet (or it asked, force).
func (c *Core) vouchFor(id peer.ID, force bool) {
	if c.cfg.Key == nil || id == c.cfg.Self.ID {
		return
	}
	m, ok := c.members.get(id)
	if !ok || m.state != StateAlive {
		return
	}
	addr := m.rec.entry.Peer.Addr
	if linked, ok := c.linked[id]; !ok || linked != addr {
		return
	}
	if !force && (len(m.rec.entry.Witnesses) >= Introductions || c.intro.sent[id] == addr) {
		return
	}
	if c.intro.sent == nil || len(c.intro.sent) >= maxLinked {
		c.intro.sent = map[peer.ID]string{}
	}
	c.intro.sent[id] = addr
	sig := c.cfg.Key.Sign(introductionBytes(id, addr))
	c.stats.IntroductionsSent++
	c.outputs = append(c.outputs, vouchSend(m.rec.entry.Peer, sig))
}

// receiveVouch takes an introduction of this node (checked once its
// witness is held: see updateWitnesses), or answers a request for one.
func (c *Core) receiveVouch(from peer.Info, v *Vouch) {
	if c.cfg.Key == nil {
		return
	}
	if len(v.Signature) == 0 {
		c.vouchFor(from.ID, true)
		return
	}
	if slices.ContainsFunc(c.intro.vouches, func(o vouch) bool { return o.w.By == from.ID }) {
		return
	}
	c.stats.IntroductionsReceived++
	if len(c.intro.vouches) >= maxVouches {
		c.intro.vouches = slices.Delete(c.intro.vouches, 0, 1)
	}
	c.intro.vouches = append(c.intro.vouches, vouch{w: Witness{By: from.ID, Signature: slices.Clone(v.Signature)}})
	c.updateWitnesses()
}

// updateWitnesses puts the first Introductions introductions by members
// this node holds alive into its own record, announcing the record again
// when they change and are enough; with too few, it asks its neighbours for
// theirs. An introduction whose signature fails is dropped and counted.
func (c *Core) updateWitnesses() {
	if c.cfg.Key == nil || c.self.State != StateAlive {
		return
	}
	var chosen []Witness
	kept := c.intro.vouches[:0]
	for _, v := range c.intro.vouches {
		m, ok := c.members.get(v.w.By)
		if ok && !v.checked {
			if !c.validWitness(c.self, v.w) {
				c.stats.InvalidRecords++
				continue
			}
			v.checked = true
		}
		kept = append(kept, v)
		if ok && m.state == StateAlive && len(chosen) < Introductions {
			chosen = append(chosen, v.w)
		}
	}
	clear(c.intro.vouches[len(kept):])
	c.intro.vouches = kept
	if slices.EqualFunc(chosen, c.self.Witnesses, func(a, b Witness) bool { return a.By == b.By }) {
		return
	}
	had := len(c.self.Witnesses)
	c.self.Witnesses = chosen
	if len(chosen) >= Introductions {
		c.announce(c.self)
		return
	}
	if had >= Introductions {
		// A witness died and no other introduction is at hand.
		for _, n := range c.Neighbors() {
			c.outputs = append(c.outputs, vouchSend(n, nil))
		}
	}
}

// witnessChanged is told that a member was adopted or is no longer alive:
// if it introduced this node, the node's own record may change.
func (c *Core) witnessChanged(id peer.ID) {
	if slices.ContainsFunc(c.intro.vouches, func(v vouch) bool { return v.w.By == id }) {
		c.updateWitnesses()
	}
}

// vouchSend returns the output that sends a Vouch to p.
func vouchSend(p peer.Info, sig []byte) overlay.Send {
	return overlay.Send{To: p, Msg: &Vouch{Signature: sig}}
}

// validWitnesses reports whether an entry's witnesses are within bounds.
func validWitnesses(ws []Witness) bool {
	if len(ws) > MaxWitnesses {
		return false
	}
	for _, w := range ws {
		if len(w.Signature) > 128 {
			return false
		}
	}
	return true
}

// cloneWitnesses returns a copy of ws that shares nothing with it.
func cloneWitnesses(ws []Witness) []Witness {
	if len(ws) == 0 {
		return nil
	}
	out := make([]Witness, len(ws))
	for i, w := range ws {
		out[i] = Witness{By: w.By, Signature: slices.Clone(w.Signature)}
	}
	return out
}

// sameWitnesses reports whether two witness lists name the same members
// with the same signatures, in the same order.
func sameWitnesses(a, b []Witness) bool {
	return slices.EqualFunc(a, b, func(x, y Witness) bool { return x.By == y.By && bytes.Equal(x.Signature, y.Signature) })
}
