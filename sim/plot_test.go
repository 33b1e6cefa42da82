package sim

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

func TestWriteSVGIsWellFormedWithAxesAndLegend(t *testing.T) {
	var buf bytes.Buffer
	err := WriteSVG(&buf,
		Chart{Title: "reached <share>", XLabel: "ms", YLabel: "share", YMax: 1,
			Series: []Series{{Name: "all & more", Points: []Point{{0, 0}, {10, 0.5}, {25, 1}}}}},
		Chart{Title: "hops", XLabel: "hops", YLabel: "share",
			Series: []Series{{Name: "at hop", Bars: true, Points: []Point{{1, 0.2}, {2, 0.8}}}, {Name: "cumulative", Points: []Point{{1, 0.2}, {2, 1}}}}},
		Chart{Title: "empty"},
	)
	if err != nil {
		t.Fatal(err)
	}
	decoder := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	var texts []string
	elements := map[string]int{}
	for {
		token, err := decoder.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, buf.String())
		}
		switch tok := token.(type) {
		case xml.StartElement:
			elements[tok.Name.Local]++
		case xml.CharData:
			if s := strings.TrimSpace(string(tok)); s != "" {
				texts = append(texts, s)
			}
		}
	}
	all := strings.Join(texts, "|")
	for _, want := range []string{"reached <share>", "all & more", "cumulative", "ms", "hops", "0.5", "1.0", "empty"} {
		if !strings.Contains(all, want) {
			t.Errorf("SVG text lacks %q: %s", want, all)
		}
	}
	if elements["path"] != 2 || elements["rect"] < 4 {
		t.Errorf("elements %v: want 2 line paths and the bars", elements)
	}
}

func TestNiceStepCutsSpansIntoReadableTicks(t *testing.T) {
	for _, tc := range []struct{ span, want float64 }{{1, 0.2}, {6, 1}, {700, 100}, {13, 2}, {0, 1}} {
		if got := niceStep(tc.span); got != tc.want {
			t.Errorf("niceStep(%v) = %v, want %v", tc.span, got, tc.want)
		}
	}
}
