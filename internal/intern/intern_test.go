package intern

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/p2p-go/p2p/internal/testutil"
)

type value struct{ s string }

// One key gives one shared value while it is held, from any goroutine.
func TestTableSharesOneValuePerKey(t *testing.T) {
	var tab Table[value]
	built := 0
	build := func(s string) func() *value { return func() *value { built++; return &value{s} } }
	a := tab.Get("a", build("a"))
	var wg sync.WaitGroup
	got := make([]*value, 8)
	for i := range got {
		wg.Go(func() { got[i] = tab.Get("a", build("a")) })
	}
	wg.Wait()
	for _, v := range got {
		if v != a {
			t.Fatal("a key gave two values")
		}
	}
	if b := tab.Get("b", build("b")); b == a || b.s != "b" {
		t.Fatalf("another key gave %+v", b)
	}
	if built != 2 {
		t.Fatalf("built %d values, want 2", built)
	}
	runtime.KeepAlive(a)
}

// A value nobody holds is collected and its key forgotten: the table does
// not keep what no core uses.
func TestTableForgetsCollectedValues(t *testing.T) {
	var tab Table[value]
	for i := range 100 {
		tab.Get(fmt.Sprint(i), func() *value { return &value{fmt.Sprint(i)} })
	}
	// Cleanups run on their own goroutine after a collection.
	testutil.EventuallyWhy(t, 10*time.Second, "the collected values to leave the table", func() (bool, string) {
		runtime.GC()
		return tab.Len() == 0, fmt.Sprintf("%d keys still held", tab.Len())
	})
}

// The memo keeps the latest Size keys and the first value put for a key.
func TestMemoKeepsTheLatestKeys(t *testing.T) {
	m := Memo[int]{Size: 3}
	for i := range 5 {
		m.Put(fmt.Sprint(i), i)
	}
	m.Put("4", 40)
	for i := range 5 {
		v, ok := m.Get(fmt.Sprint(i))
		if want := i >= 2; ok != want || ok && v != i {
			t.Fatalf("Get(%d) = %d, %v", i, v, ok)
		}
	}
	var zero Memo[int]
	zero.Put("a", 1)
	if _, ok := zero.Get("a"); ok {
		t.Fatal("a zero memo remembered")
	}
}
