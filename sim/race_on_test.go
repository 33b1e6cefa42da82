//go:build race

package sim

// raceEnabled reports a build with the race detector, whose tests run
// smaller scenarios.
const raceEnabled = true
