package wire

import (
	"fmt"
)

// Range is a block of 256 message type codes that one protocol owns: the
// high byte of every [Type] code of that protocol. A protocol claims its
// range by name with [ClaimRange] before it registers its messages, and a
// composition of cores routes a received message to the core that owns its
// range (see [Router]), never by a bare number.
type Range uint8

// The ranges of the framework's protocols.
const (
	// RangeHyParView holds package hyparview's messages (0x01xx).
	RangeHyParView Range = 0x01
	// RangePlumtree holds package plumtree's messages (0x02xx).
	RangePlumtree Range = 0x02
	// RangeKademlia holds package kademlia's messages (0x03xx).
	RangeKademlia Range = 0x03
	// RangeKV holds the replicated store's messages, package kv (0x04xx).
	RangeKV Range = 0x04
	// RangeApp is reserved for application messages of the root package
	// (0x05xx).
	RangeApp Range = 0x05
	// RangeMembership holds the membership and direct messages of package
	// gossip (0x06xx).
	RangeMembership Range = 0x06
)

// rangeOwners holds the claimed ranges and the names of their owners; it is
// guarded by registryMu.
var rangeOwners = map[Range]string{}

// ClaimRange records that the protocol named owner owns r. Like [Register]
// it is called from a package's init and panics on a programming error: r
// already claimed by another owner, or an empty name.
func ClaimRange(r Range, owner string) {
	if owner == "" {
		panic(fmt.Sprintf("wire: ClaimRange(%#x): empty owner", uint8(r)))
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if existing, ok := rangeOwners[r]; ok && existing != owner {
		panic(fmt.Sprintf("wire: range %#x claimed twice (%s and %s)", uint8(r), existing, owner))
	}
	rangeOwners[r] = owner
}

// RangeOwner returns the name of the protocol that claimed r.
func RangeOwner(r Range) (string, bool) {
	registryMu.Lock()
	defer registryMu.Unlock()
	owner, ok := rangeOwners[r]
	return owner, ok
}

// Range returns the range t belongs to.
func (t Type) Range() Range { return Range(t >> 8) }

// String returns the range's owner when it is claimed, else its number.
func (r Range) String() string {
	if owner, ok := RangeOwner(r); ok {
		return owner
	}
	return fmt.Sprintf("range %#x", uint8(r))
}

// RangeOf returns the range of msg's registered type.
func RangeOf(msg any) (Range, bool) {
	code, ok := TypeOf(msg)
	return code.Range(), ok
}

// Router maps message ranges to the parts of a composition of cores that
// handle them: each part is routed the ranges it owns, and [Router.Route]
// returns the part a received message goes to. The zero Router routes
// nothing. A Router is built once, before use, and is then read-only.
type Router[T any] struct {
	parts  [256]T
	routed [256]bool
}

// Add routes the messages of range rng to part and returns r. It panics when
// rng is already routed: two parts of one composition cannot own the same
// range.
func (r *Router[T]) Add(rng Range, part T) *Router[T] {
	if r.routed[rng] {
		panic(fmt.Sprintf("wire: %v routed twice", rng))
	}
	r.parts[rng], r.routed[rng] = part, true
	return r
}

// Route returns the part that owns msg's range, and false when msg is not a
// registered message or its range is routed to no part.
func (r *Router[T]) Route(msg any) (T, bool) {
	code, ok := lookupCode(msg)
	if !ok || !r.routed[code.Range()] {
		var none T
		return none, false
	}
	return r.parts[code.Range()], true
}
