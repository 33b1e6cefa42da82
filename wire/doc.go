// Package wire encodes protocol messages for the network.
//
// Every message travels as one frame: a 4-byte big-endian length followed by
// that many bytes of CBOR (RFC 8949), an array [type, body] where type is the
// message's registered [Type] code and body the message itself. Protocol
// packages register their message types once with [Register]; [Marshal] and
// [Unmarshal] then work on any registered message.
//
// Decoding is hardened against hostile peers: indefinite lengths, tags and
// duplicate map keys are refused, nesting depth, array and map sizes are
// bounded, and frames larger than the configured maximum are refused before
// they are read.
//
// A message type on the hot path may encode and decode itself without
// reflection: [Marshal] and [AppendMarshal] use its [BodyAppender] and
// [Unmarshal] its [BodyDecoder], built with the Append functions and the
// [Reader] of this package, which read and write the preferred CBOR forms
// only. The envelope's header is read by hand once. A fast codec writes byte
// for byte what the reflective encoder writes ([MarshalReflective]) and
// accepts exactly what the reflective decoder accepts
// ([UnmarshalReflective]): an input it does not read (a longer form of an
// integer, a null, any malformed input) goes to the reflective decoder,
// which decides. Package wire/wiretest checks a fast codec against the
// reflective one, in fuzz and property tests.
//
// Each protocol owns a [Range] of 256 type codes, claimed by name with
// [ClaimRange] before it registers its messages: [RangeHyParView] (0x01xx),
// [RangePlumtree] (0x02xx), [RangeKademlia] (0x03xx), [RangeKV] (0x04xx),
// [RangeApp] (0x05xx, application messages of the root package) and
// [RangeMembership] (0x06xx, package gossip). A composition of cores (package
// gossip, internal/stack, package sim) routes each received message with a
// [Router] to the core that owns its range.
package wire
