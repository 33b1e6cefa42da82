package simcmd

import (
	"fmt"
	"os"
	"runtime/metrics"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/spf13/cobra"
)

// profiling holds the flags that profile a run: a CPU profile of the whole
// run, a heap profile taken as the scenario measures its heap (the
// simulation still reachable), and the peak of the live heap.
type profiling struct {
	cpuPath  string
	memPath  string
	peakHeap bool
}

// register adds the profiling flags to cmd.
func (p *profiling) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&p.cpuPath, "cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof)")
	f.StringVar(&p.memPath, "memprofile", "", "write a heap profile, taken when the run measures its heap, to this file")
	f.BoolVar(&p.peakHeap, "peak-heap", false, "sample the live heap every 250 ms of real time and print its peak on stderr")
}

// run runs scenario under the profiles asked for.
func (p *profiling) run(cmd *cobra.Command, nodes int, scenario func() (report, error)) (report, error) {
	if p.cpuPath != "" {
		file, err := os.Create(p.cpuPath)
		if err != nil {
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
		defer file.Close()
		if err := pprof.StartCPUProfile(file); err != nil {
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	var peak peakSampler
	if p.peakHeap {
		peak.start()
	}
	result, err := scenario()
	if err != nil {
		peak.stop()
		return nil, err
	}
	if p.memPath != "" {
		// The scenario's Measure ran a garbage collection while the
		// simulation was reachable, and nothing since has allocated
		// enough to start another: the profile's in-use figures are
		// those of the simulation.
		if err := writeHeapProfile(p.memPath); err != nil {
			peak.stop()
			return nil, err
		}
	}
	if p.peakHeap {
		peakBytes := float64(peak.stop())
		fmt.Fprintf(cmd.ErrOrStderr(), "peak live heap: %.1f MiB (%.1f KiB per node)\n",
			peakBytes/(1<<20), peakBytes/1024/float64(max(nodes, 1)))
	}
	return result, nil
}

func writeHeapProfile(path string) error {
	file, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--memprofile: %w", err)
	}
	if err := pprof.Lookup("heap").WriteTo(file, 0); err != nil {
		file.Close()
		return fmt.Errorf("--memprofile: %w", err)
	}
	if err := file.Close(); err != nil {
		return fmt.Errorf("--memprofile: %w", err)
	}
	return nil
}

// peakSampler reads the live heap (as of the last garbage collection) every
// 250 ms on its own goroutine and keeps the largest value.
type peakSampler struct {
	done chan struct{}
	wg   sync.WaitGroup
	peak uint64
}

func (s *peakSampler) start() {
	s.done = make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		ticker := time.NewTicker(250 * time.Millisecond)
		defer ticker.Stop()
		for {
			metrics.Read(sample)
			if sample[0].Value.Kind() == metrics.KindUint64 {
				s.peak = max(s.peak, sample[0].Value.Uint64())
			}
			select {
			case <-s.done:
				return
			case <-ticker.C:
			}
		}
	}()
}

// stop ends the sampling and returns the peak (zero if never started).
func (s *peakSampler) stop() uint64 {
	if s.done == nil {
		return 0
	}
	close(s.done)
	s.wg.Wait()
	s.done = nil
	return s.peak
}
