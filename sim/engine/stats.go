package engine

import (
	"cmp"
	"runtime"
	"slices"
	"time"
)

// NodeStats returns node i's traffic counters.
func (s *Sim) NodeStats(i int) NodeStats { return s.nodes[i].stats }

// TotalStats returns the sum of every node's traffic counters.
func (s *Sim) TotalStats() NodeStats {
	var total NodeStats
	for i := range s.nodes {
		total.add(s.nodes[i].stats)
	}
	return total
}

// TypeStats returns the counters of every message type seen, the most bytes
// (then the most messages) first.
func (s *Sim) TypeStats() []TypeStats {
	out := make([]TypeStats, 0, len(s.types))
	for _, stats := range s.types {
		out = append(out, *stats)
	}
	slices.SortFunc(out, func(a, b TypeStats) int {
		return cmp.Or(cmp.Compare(b.Bytes, a.Bytes), cmp.Compare(b.Sent, a.Sent), cmp.Compare(a.Type, b.Type))
	})
	return out
}

// Lost returns the number of messages dropped by the loss model.
func (s *Sim) Lost() int64 { return s.lost }

// Dropped returns the number of messages that arrived at a dead node or
// across a partition made while they travelled.
func (s *Sim) Dropped() int64 { return s.dropped }

// CodecErrors returns the number of messages not sent because wire could not
// encode or decode them (Config.Decode).
func (s *Sim) CodecErrors() int64 { return s.codecErrors }

// Resources is what a run cost the machine.
type Resources struct {
	// HeapInuse is runtime.MemStats.HeapInuse after a garbage collection.
	HeapInuse uint64 `json:"heap_inuse_bytes"`
	// HeapPerNode is HeapInuse divided by the number of nodes.
	HeapPerNode float64 `json:"heap_per_node_bytes"`
	// CPU is the process's user and system CPU time; zero where the
	// platform does not report it.
	CPU time.Duration `json:"cpu_ns"`
	// CPUPerNode is CPU divided by the number of nodes.
	CPUPerNode time.Duration `json:"cpu_per_node_ns"`
	// Wall is the real time the run took.
	Wall time.Duration `json:"wall_ns"`
}

// Measure reports the heap in use and the CPU time consumed so far by the
// process, per node for nodes nodes, and the real time since start. Call it
// while the simulation is still reachable so that its memory counts.
func Measure(nodes int, start time.Time, wallClock func() time.Time) Resources {
	runtime.GC()
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	r := Resources{HeapInuse: mem.HeapInuse, CPU: processCPU()}
	if wallClock != nil {
		r.Wall = wallClock().Sub(start)
	}
	if nodes > 0 {
		r.HeapPerNode = float64(mem.HeapInuse) / float64(nodes)
		r.CPUPerNode = r.CPU / time.Duration(nodes)
	}
	return r
}
