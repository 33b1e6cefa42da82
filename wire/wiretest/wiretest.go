package wiretest

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"

	"github.com/p2p-go/p2p/wire"
)

// T is the part of testing.TB (and of rapid's *T) the checks use.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
}

// CheckDecode decodes data with [wire.Unmarshal], which takes the fast path
// when it can, and with [wire.UnmarshalReflective], and fails t unless both
// accept it with equal values (nil and empty slices told apart) or both
// refuse it with the same kind of error.
func CheckDecode(t T, data []byte) {
	t.Helper()
	if err := compareDecode(data); err != nil {
		t.Fatalf("input %x: %v", data, err)
	}
}

func compareDecode(data []byte) error {
	fast, fastErr := wire.Unmarshal(data)
	slow, slowErr := wire.UnmarshalReflective(data)
	switch {
	case (fastErr == nil) != (slowErr == nil):
		return fmt.Errorf("Unmarshal: %v; reflective: %v", fastErr, slowErr)
	case fastErr != nil:
		if errorKind(fastErr) != errorKind(slowErr) {
			return fmt.Errorf("Unmarshal refused with %v; reflective with %v", fastErr, slowErr)
		}
	case !reflect.DeepEqual(fast, slow):
		return fmt.Errorf("Unmarshal = %#v; reflective = %#v", fast, slow)
	}
	return nil
}

func errorKind(err error) error {
	for _, kind := range []error{wire.ErrUnknownType, wire.ErrMalformed} {
		if errors.Is(err, kind) {
			return kind
		}
	}
	return err
}

// CheckEncode encodes msg with [wire.Marshal], with [wire.AppendMarshal]
// after a prefix, and with [wire.MarshalReflective], and fails t unless the
// three give the same bytes; it then checks the decoding of those bytes with
// [CheckDecode], and that a message that decodes (not a nil pointer) decodes
// to msg.
func CheckEncode(t T, msg any) {
	t.Helper()
	want, wantErr := wire.MarshalReflective(msg)
	got, err := wire.Marshal(msg)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("%T: Marshal: %v; reflective: %v", msg, err, wantErr)
	}
	if err != nil {
		return
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%#v:\nMarshal    %x\nreflective %x", msg, got, want)
	}
	prefix := []byte("prefix")
	appended, err := wire.AppendMarshal(bytes.Clone(prefix), msg)
	if err != nil || !bytes.Equal(appended[:len(prefix)], prefix) || !bytes.Equal(appended[len(prefix):], want) {
		t.Fatalf("%#v: AppendMarshal = %x, %v; want %x%x", msg, appended, err, prefix, want)
	}
	CheckDecode(t, got)
	if v := reflect.ValueOf(msg); v.Kind() == reflect.Pointer && v.IsNil() {
		return // null decodes to a zero value, not to a nil pointer
	}
	if back, err := wire.Unmarshal(got); err == nil && !reflect.DeepEqual(back, msg) {
		t.Fatalf("round trip: %#v became %#v", msg, back)
	}
}
