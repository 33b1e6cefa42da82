package agent

import (
	"reflect"
	"strings"
	"testing"
)

func TestReadSSEJoinsDataLinesAndSkipsComments(t *testing.T) {
	stream := ": stream open\n\nevent: a\ndata: one\n\nevent: b\ndata: two\ndata:three\nid: 7\n\n: keep-alive\n\ndata: unterminated"
	var got []string
	if err := readSSE(strings.NewReader(stream), func(data []byte) error { got = append(got, string(data)); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := []string{"one", "two\nthree"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("events %q, want %q (an unterminated event is not delivered)", got, want)
	}
}
