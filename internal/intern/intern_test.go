package intern

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
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
	deadline := time.Now().Add(10 * time.Second)
	for tab.Len() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d keys still held", tab.Len())
		}
		runtime.GC()
		time.Sleep(time.Millisecond) // cleanups run on their own goroutine
	}
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
