//go:build !race

package tcp

import "testing"

// Issue 10, row 7 at full scale: 100,000 refused connections (108,784 wrote
// 109k lines before the refusal logs were rate-limited).
func TestConnectAndCloseFlood100kWritesFewerThan100Lines(t *testing.T) { refusalFlood(t, 100_000) }
