package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

type testPing struct {
	_     struct{} `cbor:",toarray"`
	Nonce uint64
	Note  string
}

type testList struct {
	_     struct{} `cbor:",toarray"`
	Items [][]byte
}

func init() {
	ClaimRange(0xff, "wire tests")
	Register(0xff01, (*testPing)(nil))
	Register(0xff02, (*testList)(nil))
}

func TestMarshalRoundTrip(t *testing.T) {
	in := &testPing{Nonce: 42, Note: "hello"}
	data, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := out.(*testPing)
	if !ok || got.Nonce != 42 || got.Note != "hello" {
		t.Fatalf("round trip: got %#v", out)
	}
	if code, ok := TypeOf(got); !ok || code != 0xff01 {
		t.Fatalf("TypeOf = %#x, %v", code, ok)
	}
}

func TestUnmarshalRefusesBadInput(t *testing.T) {
	unknown, _ := encMode.Marshal(envelope{Type: 0xfeee, Body: &testPing{}})
	wrongShape, _ := encMode.Marshal(envelope{Type: 0xff01, Body: "not a struct"})
	indefinite := []byte{0x82, 0x19, 0xff, 0x01, 0x9f, 0x01, 0xff} // [0xff01, [_ 1]]
	deep := bytes.Repeat([]byte{0x81}, 100)
	cases := map[string]struct {
		data []byte
		want error
	}{
		"empty":             {nil, ErrMalformed},
		"garbage":           {[]byte{0xff, 0x00, 0x13}, ErrMalformed},
		"unknown type":      {unknown, ErrUnknownType},
		"wrong body shape":  {wrongShape, ErrMalformed},
		"indefinite length": {indefinite, ErrMalformed},
		"too deep":          {deep, ErrMalformed},
		"truncated":         {unknown[:len(unknown)-1], ErrMalformed},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Unmarshal(tc.data); !errors.Is(err, tc.want) {
				t.Fatalf("Unmarshal: err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestMarshalRefusesUnregistered(t *testing.T) {
	type other struct{ X int }
	if _, err := Marshal(&other{}); !errors.Is(err, ErrUnknownType) {
		t.Fatalf("err = %v, want ErrUnknownType", err)
	}
}

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFrame(&buf, []byte("abc"), 10); err != nil {
		t.Fatal(err)
	}
	if err := WriteFrame(&buf, make([]byte, 11), 10); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized write: err = %v", err)
	}
	got, err := ReadFrame(&buf, 10)
	if err != nil || string(got) != "abc" {
		t.Fatalf("ReadFrame = %q, %v", got, err)
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{0, 0, 0, 11}), 10); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized read: err = %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{0, 0, 0, 5, 'a'}), 10); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated read: err = %v", err)
	}
}

// TestRouterSendsEachRangeToItsOwner checks that a Router returns the part
// that owns a registered message's range, and nothing for an unregistered
// message or a range no part owns.
func TestRouterSendsEachRangeToItsOwner(t *testing.T) {
	ClaimRange(0xfd, "router tests")
	Register(0xfd01, (*routedElsewhere)(nil))
	router := new(Router[string]).Add(0xff, "ping owner")
	if part, ok := router.Route(&testPing{}); !ok || part != "ping owner" {
		t.Fatalf("Route(testPing) = %q, %v; want the ping owner", part, ok)
	}
	if part, ok := router.Route(&routedElsewhere{}); ok {
		t.Fatalf("Route(unrouted range) = %q, want none", part)
	}
	if part, ok := router.Route(&struct{ X int }{}); ok {
		t.Fatalf("Route(unregistered) = %q, want none", part)
	}
	if r, ok := RangeOf(&testPing{}); !ok || r != 0xff || r.String() != "wire tests" {
		t.Fatalf("RangeOf(testPing) = %v (%#x), %v", r, uint8(r), ok)
	}
	mustPanic(t, "a range routed twice", func() { router.Add(0xff, "another") })
	mustPanic(t, "a range claimed twice", func() { ClaimRange(0xff, "someone else") })
	mustPanic(t, "a code in an unclaimed range", func() { Register(0xfc01, (*unclaimed)(nil)) })
}

type routedElsewhere struct{ X int }

type unclaimed struct{ X int }

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s did not panic", what)
		}
	}()
	f()
}
