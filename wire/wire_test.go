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
