package gossip

import (
	"math"

	"github.com/p2p-go/p2p/wire"
)

// A hand-written codec for DirectMessage, the one message of this package
// sent per application message (Direct), so that package wire encodes and
// decodes it without reflection (see wire.BodyAppender and
// wire.BodyDecoder). A broadcast's payload needs none: it travels inside
// Plumtree's GOSSIP as the topic byte followed by the application's bytes
// (withTopic), and is never decoded as CBOR, except membership events
// (topic 0), which are rare. codec_test.go holds the codec to the
// reflective one.

var (
	_ wire.BodyAppender = (*DirectMessage)(nil)
	_ wire.BodyDecoder  = (*DirectMessage)(nil)
)

// AppendWireBody appends the message's CBOR encoding to dst.
func (m *DirectMessage) AppendWireBody(dst []byte) []byte {
	dst = wire.AppendArrayHead(dst, 2)
	dst = wire.AppendUint(dst, uint64(m.Topic))
	return wire.AppendBytes(dst, m.Payload)
}

// DecodeWireBody decodes the message's preferred encoding into m.
func (m *DirectMessage) DecodeWireBody(body []byte) bool {
	r := wire.NewReader(body)
	r.Array(2)
	m.Topic = uint8(r.Uint(math.MaxUint8))
	payload := r.Bytes()
	if !r.Done() {
		return false
	}
	if payload != nil {
		m.Payload = append(make([]byte, 0, len(payload)), payload...)
	}
	return true
}
