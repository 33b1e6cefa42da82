package hyparview

import (
	"fmt"

	"github.com/p2p-go/p2p/peer"
)

// shuffle starts a shuffle walk through a random active peer, carrying ka
// active and kp passive peers (the origin travels in the Origin field).
func (c *Core) shuffle() {
	target, ok := c.activeView.random(c.rng, nil)
	if !ok {
		return
	}
	peers := c.activeView.sample(c.rng, c.cfg.ShuffleActive, func(id peer.ID) bool { return id == target.ID })
	peers = append(peers, c.passiveView.sample(c.rng, c.cfg.ShufflePassive, nil)...)
	c.shuffleSent = peers
	c.shuffleAwaiting = true
	c.send(target, &ShuffleMsg{Origin: c.self, TTL: uint8(c.cfg.ShuffleTTL), Peers: peers})
}

// onShuffle forwards a shuffle walk, or ends it here: reply to its origin
// with as many passive peers as it carried, then merge what it carried
// into the passive view, evicting first the peers just sent back.
func (c *Core) onShuffle(from peer.Info, msg *ShuffleMsg) error {
	if err := checkInfo(msg.Origin); err != nil {
		return fmt.Errorf("SHUFFLE: origin: %w", err)
	}
	if int(msg.TTL) > c.cfg.ShuffleTTL {
		return fmt.Errorf("SHUFFLE: %w: TTL %d exceeds %d", errMalformed, msg.TTL, c.cfg.ShuffleTTL)
	}
	if err := checkList(msg.Peers, c.cfg.ShuffleActive+c.cfg.ShufflePassive); err != nil {
		return fmt.Errorf("SHUFFLE: %w", err)
	}
	if !c.activeView.has(from.ID) {
		return fmt.Errorf("SHUFFLE from %s, which is not an active peer", from.ID.Short())
	}
	origin := msg.Origin
	if origin.ID == c.self.ID {
		return nil
	}
	if msg.TTL > 1 && c.activeView.len() > 1 {
		next, ok := c.activeView.random(c.rng, func(id peer.ID) bool { return id == from.ID || id == origin.ID })
		if ok {
			c.send(next, &ShuffleMsg{Origin: origin, TTL: msg.TTL - 1, Peers: msg.Peers})
			return nil
		}
	}
	reply := c.passiveView.sample(c.rng, len(msg.Peers)+1, func(id peer.ID) bool { return id == origin.ID })
	c.send(origin, &ShuffleReplyMsg{Peers: reply})
	c.releaseLink(origin.ID)
	c.addPassive(origin, reply)
	for _, info := range msg.Peers {
		c.addPassive(info, reply)
	}
	return nil
}

// onShuffleReply merges the answer to our last shuffle into the passive
// view, evicting first the peers that shuffle carried away. Unsolicited
// replies are ignored.
func (c *Core) onShuffleReply(from peer.Info, msg *ShuffleReplyMsg) error {
	if !c.shuffleAwaiting {
		return fmt.Errorf("unsolicited SHUFFLEREPLY from %s", from.ID.Short())
	}
	if err := checkList(msg.Peers, c.cfg.ShuffleActive+c.cfg.ShufflePassive+1); err != nil {
		return fmt.Errorf("SHUFFLEREPLY: %w", err)
	}
	c.shuffleAwaiting = false
	for _, info := range msg.Peers {
		c.addPassive(info, c.shuffleSent)
	}
	c.shuffleSent = nil
	c.releaseLink(from.ID)
	return nil
}
