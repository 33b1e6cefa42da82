package p2p

import (
	"encoding/json"
	"strings"
	"testing"
)

// jsonValidSeeds are valid and invalid documents around every rule of the
// grammar.
var jsonValidSeeds = []string{
	`{"i":1,"t":1764547200000000000,"p":"xxxx"}`, `{}`, `[]`, `""`, `0`, `-0`, `1.5e+10`, `-12.34E-5`, `true`, `false`, `null`,
	` {"a" : [1, 2, {"b": null}], "c": "\u00e9\n\"\\\/\b\f\r\t"} `, "\t\r\n[\n]\n", `"\u12aF"`, "\"\xff\xfe\"",
	``, ` `, `{`, `}`, `[1,]`, `{"a":1,}`, `{"a"}`, `{a:1}`, `{"a":1 "b":2}`, `[1 2]`, `01`, `-`, `1.`, `.5`, `1e`, `1e+`,
	`+1`, `tru`, `nulll`, `"abc`, `"\x"`, `"\u12g4"`, `"\u12"`, "\"a\x01b\"", `1 2`, `[]]`, `{}{}`, `"\`, `NaN`,
	strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth),
	strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1),
	strings.Repeat(`{"a":`, maxJSONDepth) + "1" + strings.Repeat("}", maxJSONDepth),
	strings.Repeat(`{"a":`, maxJSONDepth+1) + "1" + strings.Repeat("}", maxJSONDepth+1),
}

func TestValidJSONAgreesWithEncodingJSON(t *testing.T) {
	for _, seed := range jsonValidSeeds {
		if got, want := validJSON([]byte(seed)), json.Valid([]byte(seed)); got != want {
			t.Errorf("validJSON(%.40q) = %v, encoding/json says %v", seed, got, want)
		}
	}
}

// FuzzValidJSON holds validJSON to encoding/json.Valid: a payload from a
// peer is delivered to reactors only when validJSON accepts it, and they
// are promised JSON.
func FuzzValidJSON(f *testing.F) {
	for _, seed := range jsonValidSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := validJSON(data), json.Valid(data); got != want {
			t.Fatalf("validJSON(%q) = %v, encoding/json says %v", data, got, want)
		}
	})
}

func BenchmarkValidJSON(b *testing.B) {
	payload := []byte(`{"i":123456,"t":1764547200000000000,"p":"` + strings.Repeat("x", 200) + `"}`)
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			json.Valid(payload)
		}
	})
	b.Run("validJSON", func(b *testing.B) {
		for b.Loop() {
			validJSON(payload)
		}
	})
}
