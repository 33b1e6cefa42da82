package engine

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// LatencyKind names a distribution of one-way link latency.
type LatencyKind uint8

const (
	// LatencyFixed gives every message the latency Mean.
	LatencyFixed LatencyKind = iota
	// LatencyUniform draws each latency uniformly from [Min, Max].
	LatencyUniform
	// LatencyNormal draws each latency from a normal distribution of mean
	// Mean and standard deviation Stddev, clamped at zero.
	LatencyNormal
)

// DefaultLatency is the latency model used when Config.Latency is the zero
// value: a fixed 20 ms one way, a typical figure for machines in one region.
var DefaultLatency = Latency{Kind: LatencyFixed, Mean: 20 * time.Millisecond}

// Latency is a model of one-way link latency. Build one with [FixedLatency],
// [UniformLatency], [NormalLatency] or [ParseLatency].
type Latency struct {
	Kind LatencyKind
	// Mean is the latency of LatencyFixed and the mean of LatencyNormal.
	Mean time.Duration
	// Min and Max bound LatencyUniform.
	Min, Max time.Duration
	// Stddev is the standard deviation of LatencyNormal.
	Stddev time.Duration
}

// FixedLatency returns a model where every message takes d.
func FixedLatency(d time.Duration) Latency { return Latency{Kind: LatencyFixed, Mean: d} }

// UniformLatency returns a model drawing latencies uniformly from [min, max].
func UniformLatency(min, max time.Duration) Latency {
	return Latency{Kind: LatencyUniform, Min: min, Max: max}
}

// NormalLatency returns a model drawing latencies from a normal distribution,
// clamped at zero.
func NormalLatency(mean, stddev time.Duration) Latency {
	return Latency{Kind: LatencyNormal, Mean: mean, Stddev: stddev}
}

// IsZero reports whether l is the zero value (which means DefaultLatency).
func (l Latency) IsZero() bool { return l == Latency{} }

// Validate reports a model that cannot be sampled with an error wrapping
// ErrConfig that names the bad field.
func (l Latency) Validate() error {
	switch l.Kind {
	case LatencyFixed:
		if l.Mean < 0 {
			return fmt.Errorf("%w: Latency.Mean %v is negative", ErrConfig, l.Mean)
		}
	case LatencyUniform:
		if l.Min < 0 {
			return fmt.Errorf("%w: Latency.Min %v is negative", ErrConfig, l.Min)
		}
		if l.Max < l.Min {
			return fmt.Errorf("%w: Latency.Max %v is below Latency.Min %v", ErrConfig, l.Max, l.Min)
		}
	case LatencyNormal:
		if l.Mean < 0 {
			return fmt.Errorf("%w: Latency.Mean %v is negative", ErrConfig, l.Mean)
		}
		if l.Stddev < 0 {
			return fmt.Errorf("%w: Latency.Stddev %v is negative", ErrConfig, l.Stddev)
		}
	default:
		return fmt.Errorf("%w: Latency.Kind %d is unknown", ErrConfig, l.Kind)
	}
	return nil
}

// Average returns the expected latency of the model, used as the basis of
// round-trip delays (2 × Average).
func (l Latency) Average() time.Duration {
	if l.Kind == LatencyUniform {
		return (l.Min + l.Max) / 2
	}
	return l.Mean
}

// Shortest returns the least latency the model can draw: Mean when fixed,
// Min when uniform, zero when normal (clamped at zero).
func (l Latency) Shortest() time.Duration {
	switch l.Kind {
	case LatencyUniform:
		return l.Min
	case LatencyNormal:
		return 0
	default:
		return l.Mean
	}
}

// Sample draws one latency.
func (l Latency) Sample(random *rand.Rand) time.Duration {
	switch l.Kind {
	case LatencyUniform:
		if l.Max == l.Min {
			return l.Min
		}
		return l.Min + time.Duration(random.Int64N(int64(l.Max-l.Min)+1))
	case LatencyNormal:
		d := l.Mean + time.Duration(random.NormFloat64()*float64(l.Stddev))
		return max(d, 0)
	default:
		return l.Mean
	}
}

// String returns the model in the form ParseLatency reads.
func (l Latency) String() string {
	switch l.Kind {
	case LatencyUniform:
		return "uniform:" + l.Min.String() + "," + l.Max.String()
	case LatencyNormal:
		return "normal:" + l.Mean.String() + "," + l.Stddev.String()
	default:
		return "fixed:" + l.Mean.String()
	}
}

// ErrBadLatency is returned by ParseLatency for text it cannot read.
var ErrBadLatency = errors.New("sim: bad latency model")

// ParseLatency reads "fixed:20ms", "uniform:5ms,50ms" or "normal:20ms,5ms";
// a bare duration such as "20ms" means fixed.
func ParseLatency(text string) (Latency, error) {
	kind, args, found := strings.Cut(strings.TrimSpace(text), ":")
	if !found {
		kind, args = "fixed", kind
	}
	parts := strings.Split(args, ",")
	durations := make([]time.Duration, len(parts))
	for i, part := range parts {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil {
			return Latency{}, fmt.Errorf("%w %q: %v", ErrBadLatency, text, err)
		}
		durations[i] = d
	}
	var l Latency
	switch strings.ToLower(kind) {
	case "fixed":
		if len(durations) != 1 {
			return Latency{}, fmt.Errorf("%w %q: fixed takes one duration", ErrBadLatency, text)
		}
		l = FixedLatency(durations[0])
	case "uniform":
		if len(durations) != 2 {
			return Latency{}, fmt.Errorf("%w %q: uniform takes min,max", ErrBadLatency, text)
		}
		l = UniformLatency(durations[0], durations[1])
	case "normal":
		if len(durations) != 2 {
			return Latency{}, fmt.Errorf("%w %q: normal takes mean,stddev", ErrBadLatency, text)
		}
		l = NormalLatency(durations[0], durations[1])
	default:
		return Latency{}, fmt.Errorf("%w %q: unknown kind %q (fixed, uniform, normal)", ErrBadLatency, text, kind)
	}
	if err := l.Validate(); err != nil {
		return Latency{}, fmt.Errorf("%w %q: %v", ErrBadLatency, text, err)
	}
	return l, nil
}
