package plumtree

import (
	"math"

	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/wire"
)

// Hand-written codecs of the messages every delivery sends or receives
// (GOSSIP, IHAVE, GRAFT, PRUNE) and of SUMMARY, so that package wire encodes
// and decodes them without reflection (see wire.BodyAppender and
// wire.BodyDecoder). Each writes the bytes the reflective encoder writes for
// the struct (a `toarray` struct is an array of its fields in order; a nil
// slice is null) and reads only that form: any other input goes to the
// reflective decoder. codec_test.go holds them to that, byte for byte.

var (
	_ wire.BodyAppender = (*Gossip)(nil)
	_ wire.BodyDecoder  = (*Gossip)(nil)
	_ wire.BodyAppender = (*IHave)(nil)
	_ wire.BodyDecoder  = (*IHave)(nil)
	_ wire.BodyAppender = (*Graft)(nil)
	_ wire.BodyDecoder  = (*Graft)(nil)
	_ wire.BodyAppender = (*Prune)(nil)
	_ wire.BodyDecoder  = (*Prune)(nil)
	_ wire.BodyAppender = (*Summary)(nil)
	_ wire.BodyDecoder  = (*Summary)(nil)
)

// gossipFields is the number of fields of [Gossip] on the wire.
const gossipFields = 7

// AppendWireBody appends the GOSSIP's CBOR encoding to dst.
func (m *Gossip) AppendWireBody(dst []byte) []byte {
	dst = wire.AppendArrayHead(dst, gossipFields)
	dst = wire.AppendByteString(dst, m.ID[:])
	dst = wire.AppendUint(dst, uint64(m.Round))
	dst = appendPeerInfo(dst, m.Origin)
	dst = wire.AppendBytes(dst, m.Payload)
	dst = wire.AppendInt(dst, m.SentAt)
	dst = wire.AppendBytes(dst, m.PublicKey)
	return wire.AppendBytes(dst, m.Signature)
}

// DecodeWireBody decodes a GOSSIP's preferred encoding into m. The payload,
// public key and signature are copied into one new array, one allocation
// for the three.
func (m *Gossip) DecodeWireBody(body []byte) bool {
	r := wire.NewReader(body)
	r.Array(gossipFields)
	r.FixedBytes(m.ID[:])
	m.Round = uint16(r.Uint(math.MaxUint16))
	m.Origin = readPeerInfo(&r)
	payload := r.Bytes()
	m.SentAt = r.Int64()
	publicKey := r.Bytes()
	signature := r.Bytes()
	if !r.Done() {
		return false
	}
	backing := make([]byte, 0, len(payload)+len(publicKey)+len(signature))
	m.Payload, backing = carve(backing, payload)
	m.PublicKey, backing = carve(backing, publicKey)
	m.Signature, _ = carve(backing, signature)
	return true
}

// carve copies src to the end of backing, which has room for it, and
// returns the copy, with no room to grow into what follows it (nil for a nil
// src, empty and not nil for an empty one, as the reflective decoder gives),
// and the extended backing.
func carve(backing, src []byte) (clone, rest []byte) {
	if src == nil {
		return nil, backing
	}
	start := len(backing)
	backing = append(backing, src...)
	return backing[start:len(backing):len(backing)], backing
}

// appendPeerInfo appends a peer.Info: an array of its ID (a byte string) and
// its address.
func appendPeerInfo(dst []byte, info peer.Info) []byte {
	dst = wire.AppendArrayHead(dst, 2)
	dst = wire.AppendByteString(dst, info.ID[:])
	return wire.AppendText(dst, info.Addr)
}

func readPeerInfo(r *wire.Reader) (info peer.Info) {
	r.Array(2)
	r.FixedBytes(info.ID[:])
	info.Addr = r.Text()
	return info
}

// AppendWireBody appends the IHAVE's CBOR encoding to dst.
func (m *IHave) AppendWireBody(dst []byte) []byte {
	dst = wire.AppendArrayHead(dst, 1)
	if m.Announcements == nil {
		return wire.AppendNull(dst)
	}
	dst = wire.AppendArrayHead(dst, len(m.Announcements))
	for _, a := range m.Announcements {
		dst = wire.AppendArrayHead(dst, 2)
		dst = wire.AppendByteString(dst, a.ID[:])
		dst = wire.AppendUint(dst, uint64(a.Round))
	}
	return dst
}

// DecodeWireBody decodes an IHAVE's preferred encoding into m. It reads
// lists longer than [MaxIDsPerMessage] too, up to wire's limit, as the
// reflective decoder does: the core refuses them afterwards, and counts
// them.
func (m *IHave) DecodeWireBody(body []byte) bool {
	r := wire.NewReader(body)
	r.Array(1)
	n, null := r.ArrayHead(wire.MaxArrayElements)
	if !null && !r.Failed() {
		m.Announcements = make([]Announcement, n)
		for i := range m.Announcements {
			r.Array(2)
			r.FixedBytes(m.Announcements[i].ID[:])
			m.Announcements[i].Round = uint16(r.Uint(math.MaxUint16))
		}
	}
	return r.Done()
}

// AppendWireBody appends the GRAFT's CBOR encoding to dst.
func (m *Graft) AppendWireBody(dst []byte) []byte {
	dst = wire.AppendArrayHead(dst, 1)
	return appendMessageIDs(dst, m.IDs)
}

// DecodeWireBody decodes a GRAFT's preferred encoding into m.
func (m *Graft) DecodeWireBody(body []byte) bool {
	r := wire.NewReader(body)
	r.Array(1)
	m.IDs = readMessageIDs(&r)
	return r.Done()
}

func appendMessageIDs(dst []byte, ids []MessageID) []byte {
	if ids == nil {
		return wire.AppendNull(dst)
	}
	dst = wire.AppendArrayHead(dst, len(ids))
	for _, id := range ids {
		dst = wire.AppendByteString(dst, id[:])
	}
	return dst
}

func readMessageIDs(r *wire.Reader) []MessageID {
	n, null := r.ArrayHead(wire.MaxArrayElements)
	if null || r.Failed() {
		return nil
	}
	ids := make([]MessageID, n)
	for i := range ids {
		r.FixedBytes(ids[i][:])
	}
	return ids
}

// AppendWireBody appends the PRUNE's CBOR encoding (an empty array) to dst.
func (m *Prune) AppendWireBody(dst []byte) []byte { return wire.AppendArrayHead(dst, 0) }

// DecodeWireBody decodes a PRUNE's encoding into m.
func (m *Prune) DecodeWireBody(body []byte) bool {
	r := wire.NewReader(body)
	r.Array(0)
	return r.Done()
}

// AppendWireBody appends the SUMMARY's CBOR encoding to dst.
func (m *Summary) AppendWireBody(dst []byte) []byte {
	dst = wire.AppendArrayHead(dst, 1)
	if m.Entries == nil {
		return wire.AppendNull(dst)
	}
	dst = wire.AppendArrayHead(dst, len(m.Entries))
	for _, e := range m.Entries {
		dst = wire.AppendArrayHead(dst, 2)
		dst = wire.AppendByteString(dst, e.ID[:])
		dst = wire.AppendInt(dst, e.SentAt)
	}
	return dst
}

// DecodeWireBody decodes a SUMMARY's preferred encoding into m.
func (m *Summary) DecodeWireBody(body []byte) bool {
	r := wire.NewReader(body)
	r.Array(1)
	n, null := r.ArrayHead(wire.MaxArrayElements)
	if !null && !r.Failed() {
		m.Entries = make([]SummaryEntry, n)
		for i := range m.Entries {
			r.Array(2)
			r.FixedBytes(m.Entries[i].ID[:])
			m.Entries[i].SentAt = r.Int64()
		}
	}
	return r.Done()
}
