package kademlia

import "github.com/p2p-go/p2p/peer"

// Local requests: the inputs, besides the overlay package's Received,
// LinkDown and Tick, that a Core accepts. Requests with a ReqID are answered
// by an output carrying the same ReqID; the caller chooses the IDs.

// Bootstrap joins the network through the nodes listening at Contacts
// (paper section 2.3): it asks each for the nodes closest to this one, looks
// up its own ID, then refreshes every bucket farther than its closest
// neighbour. It is answered by a BootstrapResult.
type Bootstrap struct {
	ReqID    uint64
	Contacts []string
}

// Lookup finds the K nodes closest to Target. It is answered by a
// LookupResult.
type Lookup struct {
	ReqID  uint64
	Target peer.ID
}

// Put stores Record at the K nodes closest to its key and makes this node
// republish it every RepublishInterval. A record with Sig set is stored as
// given and must verify. A record with Name set and no Sig is this node's
// mutable record: the core signs it with Config.Signer, choosing the next
// sequence number when Seq is zero (above both the last one it used and the
// current time in nanoseconds, so that versions keep increasing across
// restarts). Any other record is immutable and its Key is computed from its
// Value. It is answered by a PutResult.
type Put struct {
	ReqID  uint64
	Record Record
}

// Get finds the record stored under Key (the FIND_VALUE lookup of paper
// section 2.3). It is answered by a GetResult.
type Get struct {
	ReqID uint64
	Key   peer.ID
}

// Broadcast sends Payload to every node of the network along the routing
// tables (El-Ansary et al. 2003). Receivers get a Deliver with Broadcast set.
type Broadcast struct {
	Payload []byte
}

// Direct sends Payload to one peer, which gets a Deliver. An empty To.Addr is
// filled in from the routing table.
type Direct struct {
	To      peer.Info
	Payload []byte
}

// Outputs, besides the overlay package's Send.

// BootstrapResult answers a Bootstrap: Contacts is the size of the routing
// table once the node's own lookup ended.
type BootstrapResult struct {
	ReqID    uint64
	Contacts int
	Err      error
}

// LookupResult answers a Lookup: the (up to) K closest nodes to the target
// that answered, closest first, never this node itself. Contacted is the
// number of requests sent; Hops the number of steps of the path by which the
// closest node was found (1 when it was in this node's table).
type LookupResult struct {
	ReqID     uint64
	Target    peer.ID
	Closest   []peer.Info
	Contacted int
	Hops      int
	Err       error
}

// PutResult answers a Put: Stored is the number of nodes (this one
// included) that accepted the record. Err is set when none did, with the
// first refusal's reason.
type PutResult struct {
	ReqID  uint64
	Key    peer.ID
	Seq    uint64
	Stored int
	Err    error
}

// GetResult answers a Get with the record found, or Err (ErrNotFound when
// the lookup ended without it). Hops is the number of steps to the node
// that returned the record, 0 when this node held it.
type GetResult struct {
	ReqID     uint64
	Key       peer.ID
	Record    Record
	Contacted int
	Hops      int
	Err       error
}

// Deliver hands the application a broadcast or direct payload. From is the
// neighbour the message came from; Origin the node that started it (for a
// broadcast, as the message claims: only From is authenticated). Hops is the
// number of links a broadcast crossed.
type Deliver struct {
	From      peer.Info
	Origin    peer.ID
	Payload   []byte
	Broadcast bool
	Hops      int
}
