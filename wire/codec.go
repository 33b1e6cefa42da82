package wire

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/fxamacker/cbor/v2"
)

// Type is the registered code of a message type.
type Type uint16

// Decoding limits applied to every message.
const (
	// MaxNestedLevels bounds how deep arrays and maps may nest.
	MaxNestedLevels = 16
	// MaxArrayElements bounds the number of elements of any array.
	MaxArrayElements = 1 << 16
	// MaxMapPairs bounds the number of pairs of any map.
	MaxMapPairs = 1 << 16
)

var (
	// ErrUnknownType is returned when a message's type code is not registered.
	ErrUnknownType = errors.New("wire: unknown message type")
	// ErrMalformed is returned for bytes that are not a valid message.
	ErrMalformed = errors.New("wire: malformed message")
)

var (
	encMode cbor.EncMode
	decMode cbor.DecMode

	// registryMu serialises the writers of the registry (Register,
	// ClaimRange) and guards rangeOwners.
	registryMu sync.Mutex
	// registered is the registry encoders and decoders read, on every
	// message, without a lock: Register replaces it with a modified copy
	// (registration happens at start-up, lookups all the time).
	registered atomic.Pointer[registry]
)

// registry is a read-only snapshot of the registered message types.
type registry struct {
	byType   map[Type]reflect.Type
	byGoType map[reflect.Type]Type
}

// lookupType returns the Go type registered with code.
func lookupType(code Type) (reflect.Type, bool) {
	r := registered.Load()
	if r == nil {
		return nil, false
	}
	goType, ok := r.byType[code]
	return goType, ok
}

// lookupCode returns the code msg's type is registered with.
func lookupCode(msg any) (Type, bool) {
	r := registered.Load()
	if r == nil {
		return 0, false
	}
	code, ok := r.byGoType[reflect.TypeOf(msg)]
	return code, ok
}

func init() {
	var err error
	encMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   MaxNestedLevels,
		MaxArrayElements:  MaxArrayElements,
		MaxMapPairs:       MaxMapPairs,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// Register associates code with the message type of sample, which must be a
// pointer to a struct (for example (*Join)(nil)). Register panics when the
// code or the type is already registered with another partner, or when the
// code's [Range] was not claimed with [ClaimRange]: those are programming
// errors found at start-up.
func Register(code Type, sample any) {
	goType := reflect.TypeOf(sample)
	if goType == nil || goType.Kind() != reflect.Pointer || goType.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("wire: Register(%#x): sample must be a pointer to a struct, got %T", code, sample))
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if existing, ok := lookupType(code); ok && existing != goType {
		panic(fmt.Sprintf("wire: type code %#x registered twice (%v and %v)", code, existing, goType))
	}
	if existing, ok := lookupCode(sample); ok && existing != code {
		panic(fmt.Sprintf("wire: %v registered twice (%#x and %#x)", goType, existing, code))
	}
	if _, claimed := rangeOwners[code.Range()]; !claimed {
		panic(fmt.Sprintf("wire: Register(%#x): range %#x claimed by no protocol (ClaimRange)", code, uint8(code.Range())))
	}
	next := &registry{byType: map[Type]reflect.Type{code: goType}, byGoType: map[reflect.Type]Type{goType: code}}
	if old := registered.Load(); old != nil {
		maps.Copy(next.byType, old.byType)
		maps.Copy(next.byGoType, old.byGoType)
	}
	registered.Store(next)
}

type envelope struct {
	_    struct{} `cbor:",toarray"`
	Type Type
	Body any
}

type rawEnvelope struct {
	_    struct{} `cbor:",toarray"`
	Type Type
	Body cbor.RawMessage
}

// BodyAppender is implemented by message types that encode themselves
// without reflection: [Marshal] and [AppendMarshal] use it for a registered
// type whose pointer implements it.
type BodyAppender interface {
	// AppendWireBody appends the CBOR encoding of the message (the body of
	// its envelope, without the envelope's type code) to dst and returns the
	// extended buffer. It must append, byte for byte, what the reflective
	// deterministic encoder writes for the same value (see [MarshalReflective]),
	// so that nodes with and without the fast path understand each other and
	// signatures over encodings stay valid. It is never called on a nil
	// pointer.
	AppendWireBody(dst []byte) []byte
}

// BodyDecoder is implemented by message types that decode themselves
// without reflection: [Unmarshal] uses it for a registered type whose
// pointer implements it.
type BodyDecoder interface {
	// DecodeWireBody decodes body, the bytes of the envelope after its type
	// code, into the receiver (a new zero value) and reports whether it did.
	// It must accept only inputs that the reflective decoder (see
	// [UnmarshalReflective]) accepts, and yield the same value; for any other
	// input, and for encodings it does not read (a longer form of an integer,
	// a null where it expects a value), it returns false, and [Unmarshal]
	// decodes the whole message by reflection instead, which accepts or
	// refuses it. It must not keep body, which the caller may reuse.
	DecodeWireBody(body []byte) bool
}

// Marshal encodes a registered message (a pointer to a registered struct).
func Marshal(msg any) ([]byte, error) {
	if _, ok := msg.(BodyAppender); !ok {
		return MarshalReflective(msg)
	}
	scratch := scratchPool.Get().(*[]byte)
	buf, err := AppendMarshal((*scratch)[:0], msg)
	var out []byte
	if err == nil {
		out = append(out, buf...) // unlike make, does not clear what it copies over
	}
	if cap(buf) <= maxPooledScratch {
		*scratch = buf
		scratchPool.Put(scratch)
	}
	return out, err
}

// scratchPool holds the buffers Marshal encodes into before copying the
// result to a slice of the exact size; buffers that grew past
// maxPooledScratch (a large payload) are left to the collector.
var scratchPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledScratch = 64 << 10

// AppendMarshal appends the encoding of a registered message (the same bytes
// as [Marshal]) to dst and returns the extended buffer, so that a caller can
// reuse one buffer for many messages. On error it returns dst unchanged.
func AppendMarshal(dst []byte, msg any) ([]byte, error) {
	code, ok := lookupCode(msg)
	if !ok {
		return dst, fmt.Errorf("%w: %T", ErrUnknownType, msg)
	}
	appender, fast := msg.(BodyAppender)
	if !fast || reflect.ValueOf(msg).IsNil() {
		data, err := encMode.Marshal(envelope{Type: code, Body: msg})
		if err != nil {
			return dst, err
		}
		return append(dst, data...), nil
	}
	dst = AppendArrayHead(dst, 2)
	dst = AppendUint(dst, uint64(code))
	return appender.AppendWireBody(dst), nil
}

// MarshalReflective encodes a registered message by reflection only, even
// when its type implements [BodyAppender]: the reference encoding a fast
// encoder must reproduce, for tests.
func MarshalReflective(msg any) ([]byte, error) {
	code, ok := lookupCode(msg)
	if !ok {
		return nil, fmt.Errorf("%w: %T", ErrUnknownType, msg)
	}
	return encMode.Marshal(envelope{Type: code, Body: msg})
}

// Unmarshal decodes a message produced by Marshal and returns a pointer to a
// new value of the registered type. It never panics on hostile input.
//
// The envelope's header is read once, by hand; the body is then decoded by
// the type's [BodyDecoder] when it has one and the body is in the form it
// reads, else by reflection. Whatever path it takes, Unmarshal accepts and
// refuses exactly what [UnmarshalReflective] does, with the same value.
func Unmarshal(data []byte) (msg any, err error) {
	code, body, ok := parseHeader(data)
	if !ok {
		return UnmarshalReflective(data)
	}
	goType, known := lookupType(code)
	if !known {
		return UnmarshalReflective(data)
	}
	value := reflect.New(goType.Elem()).Interface()
	if decoder, fast := value.(BodyDecoder); fast {
		if decoder.DecodeWireBody(body) {
			return value, nil
		}
		return UnmarshalReflective(data)
	}
	// The same checks as UnmarshalReflective, without copying the body
	// out of the envelope: the whole message is well-formed (this bounds
	// the body's nesting one level below the envelope's), and the header
	// read by hand is the envelope's, so the body is the rest of data.
	if decMode.Wellformed(data) != nil {
		return UnmarshalReflective(data)
	}
	if err := decMode.Unmarshal(body, value); err != nil {
		return nil, fmt.Errorf("%w: type %#x: %v", ErrMalformed, uint16(code), err)
	}
	return value, nil
}

// parseHeader reads the envelope's header in its preferred form: an array of
// two elements and the type code as a shortest-form unsigned integer. It
// returns the type code and the rest of data, the body.
func parseHeader(data []byte) (code Type, body []byte, ok bool) {
	r := NewReader(data)
	r.Array(2)
	v := r.Uint(0xffff)
	if r.Failed() {
		return 0, nil, false
	}
	return Type(v), data[len(data)-r.Remaining():], true
}

// UnmarshalReflective decodes a message by reflection only, even when its
// type implements [BodyDecoder]: the reference decoding a fast decoder must
// agree with, for tests.
func UnmarshalReflective(data []byte) (msg any, err error) {
	var raw rawEnvelope
	if err := decMode.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	goType, ok := lookupType(raw.Type)
	if !ok {
		return nil, fmt.Errorf("%w: %#x", ErrUnknownType, uint16(raw.Type))
	}
	value := reflect.New(goType.Elem())
	if err := decMode.Unmarshal(raw.Body, value.Interface()); err != nil {
		return nil, fmt.Errorf("%w: type %#x: %v", ErrMalformed, uint16(raw.Type), err)
	}
	return value.Interface(), nil
}

// TypeOf returns the registered code of msg's type.
func TypeOf(msg any) (Type, bool) {
	return lookupCode(msg)
}

// MarshalValue encodes any value (not a registered message) with the same
// deterministic options, for nested payloads such as signed records.
func MarshalValue(v any) ([]byte, error) { return encMode.Marshal(v) }

// UnmarshalValue decodes data into v with the hardened decoding options.
func UnmarshalValue(data []byte, v any) error {
	if err := decMode.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}
