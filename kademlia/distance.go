package kademlia

import (
	"math/bits"

	"github.com/p2p-go/p2p/peer"
)

// IDBits is the length of node IDs and keys in bits.
const IDBits = peer.IDLen * 8

// Distance returns the XOR distance between a and b (paper section 2.1),
// itself an ID-sized number compared big-endian.
func Distance(a, b peer.ID) peer.ID {
	var d peer.ID
	for i := range d {
		d[i] = a[i] ^ b[i]
	}
	return d
}

// CommonPrefixLen returns the number of leading bits a and b share, IDBits
// when they are equal. A contact with common prefix length i with the node
// lives in bucket i.
func CommonPrefixLen(a, b peer.ID) int {
	for i := range a {
		if x := a[i] ^ b[i]; x != 0 {
			return i*8 + bits.LeadingZeros8(x)
		}
	}
	return IDBits
}

// Closer reports whether a is strictly closer to target than b.
func Closer(target, a, b peer.ID) bool {
	for i := range target {
		da, db := a[i]^target[i], b[i]^target[i]
		if da != db {
			return da < db
		}
	}
	return false
}

// compareDistance orders a and b by distance to target: -1, 0 or +1.
func compareDistance(target, a, b peer.ID) int {
	for i := range target {
		da, db := a[i]^target[i], b[i]^target[i]
		if da != db {
			if da < db {
				return -1
			}
			return 1
		}
	}
	return 0
}

// bit returns bit i (0 = most significant) of id.
func bit(id peer.ID, i int) byte {
	return (id[i/8] >> (7 - uint(i%8))) & 1
}

// flipBit returns id with bit i inverted.
func flipBit(id peer.ID, i int) peer.ID {
	id[i/8] ^= 1 << (7 - uint(i%8))
	return id
}
