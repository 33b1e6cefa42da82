package wire

import (
	"errors"
	"fmt"
	"reflect"
	"sync"

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

	registryMu sync.RWMutex
	byType     = map[Type]reflect.Type{}
	byGoType   = map[reflect.Type]Type{}
)

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
	if existing, ok := byType[code]; ok && existing != goType {
		panic(fmt.Sprintf("wire: type code %#x registered twice (%v and %v)", code, existing, goType))
	}
	if existing, ok := byGoType[goType]; ok && existing != code {
		panic(fmt.Sprintf("wire: %v registered twice (%#x and %#x)", goType, existing, code))
	}
	if _, claimed := rangeOwners[code.Range()]; !claimed {
		panic(fmt.Sprintf("wire: Register(%#x): range %#x claimed by no protocol (ClaimRange)", code, uint8(code.Range())))
	}
	byType[code] = goType
	byGoType[goType] = code
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

// Marshal encodes a registered message (a pointer to a registered struct).
func Marshal(msg any) ([]byte, error) {
	registryMu.RLock()
	code, ok := byGoType[reflect.TypeOf(msg)]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: %T", ErrUnknownType, msg)
	}
	return encMode.Marshal(envelope{Type: code, Body: msg})
}

// Unmarshal decodes a message produced by Marshal and returns a pointer to a
// new value of the registered type. It never panics on hostile input.
func Unmarshal(data []byte) (msg any, err error) {
	var raw rawEnvelope
	if err := decMode.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	registryMu.RLock()
	goType, ok := byType[raw.Type]
	registryMu.RUnlock()
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
	registryMu.RLock()
	defer registryMu.RUnlock()
	code, ok := byGoType[reflect.TypeOf(msg)]
	return code, ok
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
