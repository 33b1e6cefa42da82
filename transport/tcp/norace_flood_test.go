//go:build !race

package tcp

import "testing"

// Issue 10, row 7 at full scale: 100,000 refused connections (108,784 wrote
// 109k lines before the refusal logs were rate-limited).
func TestConnectAndCloseFlood100kWritesFewerThan100Lines(t *testing.T) { refusalFlood(t, 100_000) }

// Row 7 with another shape at full scale: 100,000 connections that each send
// a message 1 made with another secret (random bytes) and close.
func TestGarbageFlood100kWritesFewerThan100Lines(t *testing.T) { garbageFlood(t, 100_000) }
