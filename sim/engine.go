package sim

import (
	"time"

	"github.com/p2p-go/p2p/sim/engine"
)

// The discrete-event engine lives in package [engine], which imports no
// protocol core, so that the cores' own tests can drive it too. These aliases
// keep sim's API as it was.

// Sim is the discrete-event engine: see [engine.Sim].
type Sim = engine.Sim

// Config configures a [Sim]: see [engine.Config].
type Config = engine.Config

// Identity is what a node's builder receives: see [engine.Identity].
type Identity = engine.Identity

// NodeStats counts one node's traffic: see [engine.NodeStats].
type NodeStats = engine.NodeStats

// TypeStats counts one message type's traffic: see [engine.TypeStats].
type TypeStats = engine.TypeStats

// Resources is the memory and CPU a run used: see [engine.Resources].
type Resources = engine.Resources

// Latency is a model of one-way link latency: see [engine.Latency].
type Latency = engine.Latency

// LatencyKind names a latency distribution: see [engine.LatencyKind].
type LatencyKind = engine.LatencyKind

// The latency distributions: see [engine.LatencyFixed].
const (
	LatencyFixed   = engine.LatencyFixed
	LatencyUniform = engine.LatencyUniform
	LatencyNormal  = engine.LatencyNormal
)

var (
	// DefaultEpoch is the virtual time a run starts at: see [engine.DefaultEpoch].
	DefaultEpoch = engine.DefaultEpoch
	// DefaultLatency is the latency when none is set: see [engine.DefaultLatency].
	DefaultLatency = engine.DefaultLatency
	// ErrUnreachable is the error of simulated link failures: see [engine.ErrUnreachable].
	ErrUnreachable = engine.ErrUnreachable
	// ErrConfig reports an invalid configuration: see [engine.ErrConfig].
	ErrConfig = engine.ErrConfig
	// ErrBadLatency reports an unparsable latency model: see [engine.ErrBadLatency].
	ErrBadLatency = engine.ErrBadLatency
)

// New returns an empty simulation: see [engine.New].
func New(cfg Config) (*Sim, error) { return engine.New(cfg) }

// Addr is the address of node i: see [engine.Addr].
func Addr(i int) string { return engine.Addr(i) }

// FixedLatency is a constant latency: see [engine.FixedLatency].
func FixedLatency(d time.Duration) Latency { return engine.FixedLatency(d) }

// UniformLatency is a latency uniform in [min, max]: see [engine.UniformLatency].
func UniformLatency(min, max time.Duration) Latency { return engine.UniformLatency(min, max) }

// NormalLatency is a normally distributed latency: see [engine.NormalLatency].
func NormalLatency(mean, stddev time.Duration) Latency { return engine.NormalLatency(mean, stddev) }

// ParseLatency parses a latency model: see [engine.ParseLatency].
func ParseLatency(text string) (Latency, error) { return engine.ParseLatency(text) }

// Measure reports the memory and CPU in use: see [engine.Measure].
func Measure(nodes int, start time.Time, wallClock func() time.Time) Resources {
	return engine.Measure(nodes, start, wallClock)
}

// Churn describes random crashes and joins: see [engine.Churn].
type Churn = engine.Churn

// ChurnHandle controls running churn: see [engine.ChurnHandle].
type ChurnHandle = engine.ChurnHandle
