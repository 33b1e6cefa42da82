package p2p_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that every node's Close leaves no goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
