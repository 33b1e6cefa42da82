package gossip

// Signed member records (issue 10): a member's own facts (its address,
// incarnation, name and tags, and that it left) are stated only by the
// member, signed with its ed25519 key, whose hash is its ID. Other nodes
// relay a record but cannot invent or alter one. A claim that a member is
// suspect or dead may come from anyone, but it names a record the member
// signed (it carries that record's signature): nobody can claim a member
// dead at an incarnation it never had, so an incarnation cannot be poisoned.

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"maps"
	"slices"

	"github.com/p2p-go/p2p/peer"
)

// Bounds of a member's name and tags.
const (
	MaxNameLen     = 128
	MaxTags        = 32
	MaxTagKeyLen   = 128
	MaxTagValueLen = 512
)

// maxIncarnation is where a member's own incarnation saturates: it never
// wraps, whatever the claims it hears.
const maxIncarnation = 1<<64 - 1

// recordDomain separates member-record signatures from every other use of
// a node's key.
const recordDomain = "p2p/gossip member record v1\x00"

// signedState is the state a record's signature covers: a member signs that
// it is alive, or that it left; a dead or suspect claim carries the
// signature of the alive record it is about.
func signedState(state uint8) uint8 {
	if state == StateLeft {
		return StateLeft
	}
	return StateAlive
}

// recordBytes returns the bytes a member signs for e.
func recordBytes(e Entry) []byte {
	buf := make([]byte, 0, len(recordDomain)+peer.IDLen+64+len(e.Peer.Addr)+len(e.Name))
	buf = append(buf, recordDomain...)
	buf = append(buf, e.Peer.ID[:]...)
	buf = appendString(buf, e.Peer.Addr)
	buf = binary.BigEndian.AppendUint64(buf, e.Incarnation)
	buf = append(buf, signedState(e.State))
	buf = appendString(buf, e.Name)
	keys := slices.Sorted(maps.Keys(e.Tags))
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(keys)))
	for _, k := range keys {
		buf = appendString(buf, k)
		buf = appendString(buf, e.Tags[k])
	}
	return buf
}

func appendString(buf []byte, s string) []byte {
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)))
	return append(buf, s...)
}

// validMeta reports whether a name and tags are within their bounds.
func validMeta(name string, tags map[string]string) bool {
	if len(name) > MaxNameLen || len(tags) > MaxTags {
		return false
	}
	for k, v := range tags {
		if len(k) > MaxTagKeyLen || len(v) > MaxTagValueLen {
			return false
		}
	}
	return true
}

// sign fills e's public key and signature with this node's key (nothing
// without a key: an unsigned core, for simulations).
func (c *Core) sign(e *Entry) {
	if c.cfg.Key == nil {
		return
	}
	e.PublicKey = c.cfg.Key.Public()
	e.Signature = c.cfg.Key.Sign(recordBytes(*e))
}

// verified reports whether e carries its member's valid signature, and
// counts the refusal when it does not. A record identical to the one this
// node holds (same signature over the same bytes) was verified when it
// arrived and is not verified again. A record that needs a check is refused
// unverified when the message being handled already failed its
// Config.SignatureFailures checks, or when its member's record was verified
// earlier in the same member list; a check that fails counts against the
// message (see budget.go). A core without a key checks nothing.
func (c *Core) verified(e Entry) bool {
	if c.cfg.Key == nil {
		return true
	}
	if len(e.PublicKey) != ed25519.PublicKeySize || peer.IDFromPublicKey(e.PublicKey) != e.Peer.ID {
		c.stats.InvalidRecords++
		return false
	}
	if m, ok := c.members.get(e.Peer.ID); ok && len(m.rec.entry.Signature) > 0 && bytes.Equal(m.rec.entry.Signature, e.Signature) &&
		bytes.Equal(recordBytes(m.rec.entry), recordBytes(e)) {
		return true
	}
	list := &c.checks
	if _, ok := list.verified[e.Peer.ID]; ok {
		c.stats.DuplicateRecords++
		return false
	}
	if !c.mayVerify() {
		return false
	}
	c.stats.SignaturesChecked++
	if !peer.Verify(e.PublicKey, recordBytes(e), e.Signature) {
		c.stats.InvalidRecords++
		c.verifyFailed()
		return false
	}
	if list.listing {
		if list.verified == nil {
			list.verified = map[peer.ID]struct{}{}
		}
		list.verified[e.Peer.ID] = struct{}{}
	}
	return true
}

// refuteFrom answers a claim, delivered by from, that this node is suspect
// or dead at incarnation claimed. A claim at this node's incarnation is
// refuted with the next one, as in SWIM. A claim above it was forged (this
// node's incarnations exist only in its own signed records): it is counted,
// reported once, and refuted all the same, with this node's own next
// incarnation, never the claimed one, so that a claim at the largest
// incarnation cannot make the refutation wrap.
func (c *Core) refuteFrom(from peer.Info, claimed uint64) {
	if c.self.State != StateAlive || claimed < c.self.Incarnation {
		return
	}
	if claimed > c.self.Incarnation {
		c.stats.IncarnationAttacks++
		if !c.attackReported {
			c.attackReported = true
			c.outputs = append(c.outputs, IncarnationAttack{From: from, Claimed: claimed, Own: c.self.Incarnation})
		}
	}
	if c.cfg.Key == nil {
		// Unsigned (simulations): the others take any claim, so the
		// refutation must top it.
		c.self.Incarnation = max(claimed, c.self.Incarnation)
	}
	if c.self.Incarnation < maxIncarnation {
		c.self.Incarnation++
	}
	c.sign(&c.self)
	c.stats.Refutations++
	c.announce(c.self)
}
