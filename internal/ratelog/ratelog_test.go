package ratelog

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A warning that peers can trigger by the thousand is written at most once
// per interval, with the count of those left out.
func TestWarnerWritesOneLinePerInterval(t *testing.T) {
	var lines []string
	handler := slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		lines = append(lines, string(p))
		return len(p), nil
	}), nil)
	now := time.Unix(1_000_000, 0)
	w := New(slog.New(handler), func() time.Time { return now }, 10*time.Second, "send queue full, message dropped")
	for range 10_000 {
		w.Warn("peer", "x")
	}
	if len(lines) != 1 {
		t.Fatalf("%d lines for 10,000 warnings within the interval, want 1", len(lines))
	}
	now = now.Add(10 * time.Second)
	w.Warn("peer", "x")
	if len(lines) != 2 || !strings.Contains(lines[1], "left_out_since_last_line=9999") {
		t.Fatalf("lines %q, want a second one counting the 9,999 left out", lines)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
