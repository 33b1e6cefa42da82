package p2p

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/p2p-go/p2p/peer"
)

// Message is what a reactor receives.
type Message struct {
	// Data is the JSON the sender passed to Send, SendOne or Reply.
	Data json.RawMessage
	// From is the ID of the node that sent the message (the original sender
	// of a broadcast, not the neighbour that relayed it). For a direct
	// message or a reply it is the identity the sender proved on the
	// encrypted link it came over: it cannot be forged. For a broadcast it
	// is the origin the message names: with Config.SignBroadcasts the
	// origin's signature proves it; without, it is the word of the
	// neighbours that relayed it, and a member holding the cluster secret
	// could name another origin.
	From peer.ID
	// FromAddr is the address the sender advertises (a claim that is not
	// checked; a reply goes to From, whose identity the link proves).
	FromAddr string
	// Direct is true for a message sent to this node alone (SendOne or a
	// reply), false for a broadcast.
	Direct bool
	// Hops is the number of links a broadcast crossed to reach this node.
	Hops int

	// A reply goes to origin through replier, the overlay that delivered
	// the message (an interface rather than a closure: one allocation less
	// per delivery); nil when the message cannot be answered.
	replier replier
	origin  peer.Info
}

// replier sends a reply to a message's origin: the overlay that
// delivered the message.
type replier interface {
	replyTo(ctx context.Context, origin peer.Info, v any) error
}

// Decode unmarshals the message's JSON data into v.
func (m *Message) Decode(v any) error {
	if err := json.Unmarshal(m.Data, v); err != nil {
		return fmt.Errorf("p2p: decode message from %s: %w", m.From.Short(), err)
	}
	return nil
}

// Reply sends v (any JSON-encodable value) straight back to the message's
// original sender, not through the broadcast. The sender's reactors receive it
// as a direct message.
func (m *Message) Reply(ctx context.Context, v any) error {
	if m.replier == nil {
		return ErrNoReply
	}
	return m.replier.replyTo(ctx, m.origin, v)
}

// A Reactor is called for every message a node receives. Reactors run on
// their own goroutines, never on the network's, so a slow reactor cannot stall
// the overlay; see [Broadcaster.React] for the queueing rules.
type Reactor func(m *Message)
