package plumtree

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"

	"github.com/p2p-go/p2p/peer"
)

// Origin signatures (see the package doc, Origin signatures). A relay can
// alter any field of a GOSSIP; with signatures required, a receiver accepts
// only a message whose origin signed its origin (ID and address), ID, send
// time and payload with the key the origin ID is the hash of.

// signatureContext separates these signatures from any other use of the key.
const signatureContext = "p2p/plumtree/broadcast/v1\x00"

// signedBytes returns what the origin of g signs.
func signedBytes(g *Gossip) []byte {
	buf := make([]byte, 0, len(signatureContext)+peer.IDLen+2+len(g.Origin.Addr)+MessageIDLen+8+len(g.Payload))
	buf = append(buf, signatureContext...)
	buf = append(buf, g.Origin.ID[:]...)
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(g.Origin.Addr)))
	buf = append(buf, g.Origin.Addr...)
	buf = append(buf, g.ID[:]...)
	buf = binary.BigEndian.AppendUint64(buf, uint64(g.SentAt))
	return append(buf, g.Payload...)
}

// sign fills the signature fields of g, a broadcast of this node, when the
// node signs its broadcasts.
func (c *Core) sign(g *Gossip) {
	if c.cfg.SigningKey == nil {
		return
	}
	g.PublicKey = c.cfg.SigningKey.Public()
	g.Signature = c.cfg.SigningKey.Sign(signedBytes(g))
}

// verifiedOrigin reports whether g carries a valid signature of its origin.
func verifiedOrigin(g *Gossip) bool {
	if len(g.PublicKey) != ed25519.PublicKeySize || peer.IDFromPublicKey(g.PublicKey) != g.Origin.ID {
		return false
	}
	return peer.Verify(g.PublicKey, signedBytes(g), g.Signature)
}

// checkSignature refuses (and counts) a GOSSIP without a valid origin
// signature when signatures are required.
func (c *Core) checkSignature(from peer.Info, g *Gossip) bool {
	if !c.cfg.RequireSignatures || verifiedOrigin(g) {
		return true
	}
	c.stats.RefusedSignature++
	c.log.Debug("plumtree: GOSSIP refused: no valid origin signature", "peer", from.ID.Short(), "msg_id", g.ID,
		"origin", g.Origin.ID.Short(), "signed", len(g.Signature) > 0)
	return false
}

// validateSignatureFields checks the lengths of the signature fields: both
// empty (unsigned) or a public key and a signature of the right sizes.
func (m *Gossip) validateSignatureFields() error {
	if len(m.PublicKey) == 0 && len(m.Signature) == 0 {
		return nil
	}
	if len(m.PublicKey) != ed25519.PublicKeySize || len(m.Signature) != ed25519.SignatureSize {
		return fmt.Errorf("%w: GOSSIP %v with a %d-byte public key and a %d-byte signature, want %d and %d",
			ErrInvalidMessage, m.ID, len(m.PublicKey), len(m.Signature), ed25519.PublicKeySize, ed25519.SignatureSize)
	}
	return nil
}
