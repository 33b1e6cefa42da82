package sim

import (
	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
)

// Protocol adapts a broadcast overlay to the broadcast and massfail
// scenarios: how to build a node's core, how to ask it to join and to
// broadcast, and how to recognise its deliveries and its payload messages.
type Protocol interface {
	// Name names the protocol in reports.
	Name() string
	// NewCore builds the core of a new node.
	NewCore(id Identity) (overlay.Core, error)
	// JoinInput returns the input that makes a node join the overlay through
	// contacts (addresses); no contacts starts a new overlay.
	JoinInput(contacts []string) any
	// BroadcastInput returns the input that makes a node broadcast payload.
	BroadcastInput(payload []byte) any
	// Delivery recognises an application delivery among a core's outputs.
	Delivery(out any) (Delivery, bool)
	// PayloadMessage recognises a message on the wire that carries an
	// application payload (what the relative message redundancy counts) and
	// returns the ID of the broadcast it belongs to.
	PayloadMessage(msg any) (MessageID, bool)
}

// NeighborLister is implemented by protocols whose cores can list their
// overlay neighbours; the massfail scenario uses it to tell when the overlay
// has healed.
type NeighborLister interface {
	Neighbors(core overlay.Core) []peer.ID
}
