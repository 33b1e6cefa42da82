package sim

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/p2p-go/p2p/kademlia"
	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/peer"
)

// Defaults of KademliaConfig.
const (
	DefaultLookups       = 1000
	DefaultRecords       = 100
	DefaultLookupTimeout = 30 * time.Second
	DefaultKadSettle     = 10 * time.Second
)

// KademliaConfig configures the kademlia scenario. Zero fields take the
// defaults.
type KademliaConfig struct {
	// Sim configures the engine.
	Sim Config
	// Kademlia is the template of every node's configuration; Self, Signer
	// and Seed are set per node.
	Kademlia kademlia.Config
	// Nodes is the number of nodes (default 1000).
	Nodes int
	// Lookups is the number of lookups of random IDs, one after another from
	// random live nodes (default 1000).
	Lookups int
	// Records is the number of immutable records stored from one random node
	// and fetched from another (default 100; negative: none).
	Records int
	// JoinInterval staggers the bootstraps (default 10 ms).
	JoinInterval time.Duration
	// Settle is how long the network runs after the last bootstrap (default
	// 10 s).
	Settle time.Duration
	// LookupTimeout bounds the wait for one answer (default 30 s).
	LookupTimeout time.Duration
	// ChurnRate, when positive, kills that many random nodes per second and
	// joins as many new ones while the lookups and records run.
	ChurnRate float64
}

// withDefaults returns a copy of c with the zero fields filled, or an error
// wrapping ErrConfig that names the invalid field.
func (c KademliaConfig) withDefaults() (KademliaConfig, error) {
	for _, field := range []struct {
		name     string
		negative bool
	}{
		{"Nodes", c.Nodes < 0},
		{"Lookups", c.Lookups < 0},
		{"JoinInterval", c.JoinInterval < 0},
		{"Settle", c.Settle < 0},
		{"LookupTimeout", c.LookupTimeout < 0},
		{"ChurnRate", c.ChurnRate < 0},
	} {
		if field.negative {
			return c, fmt.Errorf("%w: KademliaConfig.%s is negative", ErrConfig, field.name)
		}
	}
	if c.Nodes == 0 {
		c.Nodes = DefaultNodes
	}
	if c.Nodes < 2 {
		return c, fmt.Errorf("%w: KademliaConfig.Nodes %d: need at least 2", ErrConfig, c.Nodes)
	}
	if c.Lookups == 0 {
		c.Lookups = DefaultLookups
	}
	switch {
	case c.Records == 0:
		c.Records = DefaultRecords
	case c.Records < 0:
		c.Records = 0
	}
	if c.JoinInterval == 0 {
		c.JoinInterval = DefaultJoinInterval
	}
	if c.Settle == 0 {
		c.Settle = DefaultKadSettle
	}
	if c.LookupTimeout == 0 {
		c.LookupTimeout = DefaultLookupTimeout
	}
	return c, nil
}

// KademliaResult is what the kademlia scenario measured.
type KademliaResult struct {
	Nodes     int     `json:"nodes"`
	Seed      uint64  `json:"seed"`
	Latency   string  `json:"latency"`
	Loss      float64 `json:"loss"`
	K         int     `json:"k"`
	Alpha     int     `json:"alpha"`
	ChurnRate float64 `json:"churn_per_second"`
	// Bootstrapped is the number of nodes whose Bootstrap succeeded.
	Bootstrapped int `json:"bootstrapped"`
	// TableSizeMean is the mean routing-table size after settling.
	TableSizeMean float64 `json:"table_size_mean"`
	// Lookups aggregates the lookups of random IDs.
	Lookups LookupSummary `json:"lookups"`
	// Gets aggregates the fetches of stored records.
	Gets LookupSummary `json:"gets"`
	// PutsStored is the mean number of nodes that accepted each Put.
	PutsStored float64 `json:"puts_stored_mean"`
	// Killed and Joined count the churn events.
	Killed int     `json:"killed"`
	Joined int     `json:"joined"`
	EndMs  float64 `json:"end_ms"`
	// HopsHistogram[h] counts the lookups that took h hops.
	HopsHistogram []int64   `json:"hops_histogram"`
	Events        uint64    `json:"events"`
	Resources     Resources `json:"resources"`
}

// LookupSummary aggregates lookups (or gets).
type LookupSummary struct {
	Count int `json:"count"`
	// Succeeded counts lookups that returned the true K closest live nodes
	// (checked by brute force over every live node), or gets that returned
	// the record.
	Succeeded   int     `json:"succeeded"`
	SuccessRate float64 `json:"success_rate"`
	// ClosestFound counts lookups whose first result is the true closest
	// live node.
	ClosestFound int `json:"closest_found"`
	// Overlap is the mean share of the true K closest that were returned.
	Overlap float64 `json:"overlap"`
	// Errors counts answers with an error and lookups that timed out.
	Errors   int     `json:"errors"`
	HopsP50  float64 `json:"hops_p50"`
	HopsP99  float64 `json:"hops_p99"`
	HopsMax  float64 `json:"hops_max"`
	HopsMean float64 `json:"hops_mean"`
	// Messages are the messages sent by all nodes while the lookup ran
	// (requests and replies, plus any background traffic).
	MessagesP50  float64 `json:"messages_p50"`
	MessagesP99  float64 `json:"messages_p99"`
	MessagesMean float64 `json:"messages_mean"`
	// Contacted is the mean number of requests the lookup sent.
	ContactedMean float64 `json:"contacted_mean"`
	TimeP50Ms     float64 `json:"time_p50_ms"`
	TimeP99Ms     float64 `json:"time_p99_ms"`
	TimeMaxMs     float64 `json:"time_max_ms"`
}

// lookupSample is one measured lookup or get.
type lookupSample struct {
	ok, closest bool
	failed      bool
	overlap     float64
	hops        int
	contacted   int
	messages    int64
	time        time.Duration
}

// summarize aggregates samples.
func summarize(samples []lookupSample) LookupSummary {
	s := LookupSummary{Count: len(samples)}
	if len(samples) == 0 {
		return s
	}
	var hops, messages, times []float64
	var overlap, contacted float64
	for _, x := range samples {
		if x.ok {
			s.Succeeded++
		}
		if x.closest {
			s.ClosestFound++
		}
		if x.failed {
			s.Errors++
		}
		overlap += x.overlap
		contacted += float64(x.contacted)
		hops = append(hops, float64(x.hops))
		messages = append(messages, float64(x.messages))
		times = append(times, ms(x.time))
	}
	n := float64(len(samples))
	s.SuccessRate = float64(s.Succeeded) / n
	s.Overlap = overlap / n
	s.ContactedMean = contacted / n
	for _, list := range [][]float64{hops, messages, times} {
		slices.Sort(list)
	}
	s.HopsP50, s.HopsP99, s.HopsMax = percentile(hops, 0.5), percentile(hops, 0.99), hops[len(hops)-1]
	s.MessagesP50, s.MessagesP99 = percentile(messages, 0.5), percentile(messages, 0.99)
	s.TimeP50Ms, s.TimeP99Ms, s.TimeMaxMs = percentile(times, 0.5), percentile(times, 0.99), times[len(times)-1]
	for i := range hops {
		s.HopsMean += hops[i] / n
		s.MessagesMean += messages[i] / n
	}
	return s
}

// kadRun is the state of one kademlia run.
type kadRun struct {
	cfg          KademliaConfig
	sim          *Sim
	answers      map[uint64]any // answers by request ID
	bootstrapped int
	nextReq      uint64
	phase        string
	done         int
}

// RunKademlia runs the kademlia scenario: cfg.Nodes Kademlia cores bootstrap
// one after another through a random earlier node, settle, then run
// cfg.Lookups lookups of random IDs one at a time from random live nodes,
// each checked against the true K closest live nodes; then cfg.Records
// immutable records are stored from random nodes and fetched from others.
// With ChurnRate, nodes crash and join throughout the measured phase.
func RunKademlia(cfg KademliaConfig) (*KademliaResult, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	wallClock := cfg.Sim.Clock()
	wallStart := wallClock()
	run := &kadRun{cfg: cfg, answers: map[uint64]any{}, phase: "bootstrapping"}
	simCfg := cfg.Sim
	userObserver := simCfg.Observer
	simCfg.Observer = func(now time.Time, node int, out any) {
		switch o := out.(type) {
		case kademlia.BootstrapResult:
			if o.Err == nil {
				run.bootstrapped++
			}
		case kademlia.LookupResult:
			run.answers[o.ReqID] = o
		case kademlia.PutResult:
			run.answers[o.ReqID] = o
		case kademlia.GetResult:
			run.answers[o.ReqID] = o
		}
		if userObserver != nil {
			userObserver(now, node, out)
		}
	}
	simCfg.Status = func() string { return fmt.Sprintf("%s %d done", run.phase, run.done) }
	s, err := New(simCfg)
	if err != nil {
		return nil, err
	}
	run.sim = s
	defer s.FinishProgress()

	if err := s.AddStaggered(cfg.Nodes, cfg.JoinInterval, run.addNode); err != nil {
		return nil, err
	}
	s.RunFor(cfg.Settle)
	result := &KademliaResult{
		Nodes: cfg.Nodes, Seed: cfg.Sim.Seed, Latency: s.Latency().String(), Loss: cfg.Sim.Loss,
		ChurnRate: cfg.ChurnRate, Bootstrapped: run.bootstrapped,
	}
	var tableTotal int
	for _, i := range s.LiveNodes() {
		core := s.Core(i).(*kademlia.Core)
		tableTotal += core.TableSize()
		result.K, result.Alpha = core.Config().K, core.Config().Alpha
	}
	result.TableSizeMean = float64(tableTotal) / float64(s.LiveCount())

	var churn *ChurnHandle
	if cfg.ChurnRate > 0 {
		churn, err = s.StartChurn(Churn{KillRate: cfg.ChurnRate, JoinRate: cfg.ChurnRate, Join: run.addNode, MinLive: cfg.Nodes / 2})
		if err != nil {
			return nil, err
		}
	}
	run.phase = "lookups"
	var lookups []lookupSample
	hist := []int64{}
	for range cfg.Lookups {
		sample := run.lookup()
		lookups = append(lookups, sample)
		for len(hist) <= sample.hops {
			hist = append(hist, 0)
		}
		hist[sample.hops]++
		run.done++
	}
	run.phase, run.done = "records", 0
	var gets []lookupSample
	var storedTotal int
	for k := range cfg.Records {
		get, stored := run.record(k)
		gets = append(gets, get)
		storedTotal += stored
		run.done++
	}
	if churn != nil {
		if err := churn.Stop(); err != nil {
			return nil, err
		}
		result.Killed, result.Joined = churn.Kills, churn.Joins
	}
	result.Lookups = summarize(lookups)
	result.Gets = summarize(gets)
	if cfg.Records > 0 {
		result.PutsStored = float64(storedTotal) / float64(cfg.Records)
	}
	result.HopsHistogram = hist
	result.EndMs = ms(s.Elapsed())
	result.Events = s.Events()
	result.Resources = Measure(s.Len(), wallStart, wallClock)
	return result, nil
}

// addNode adds a Kademlia node and bootstraps it through a random live node.
func (run *kadRun) addNode() error {
	s := run.sim
	var contacts []string
	if s.LiveCount() > 0 {
		contacts = []string{s.Info(s.RandomLive()).Addr}
	}
	index, err := s.AddNode(func(id Identity) (overlay.Core, error) {
		cfg := run.cfg.Kademlia
		cfg.Self, cfg.Signer, cfg.Seed = id.Info, id.Key, id.Seed
		return kademlia.New(cfg)
	})
	if err != nil {
		return err
	}
	run.nextReq++
	s.Step(index, kademlia.Bootstrap{ReqID: run.nextReq, Contacts: contacts})
	return nil
}

// ask steps node with the request built for a fresh request ID and runs
// until the answer arrives or the timeout passes. It returns the answer
// (nil on timeout), the time taken and the messages sent meanwhile.
func (run *kadRun) ask(node int, request func(reqID uint64) any) (any, time.Duration, int64) {
	s := run.sim
	run.nextReq++
	reqID := run.nextReq
	start, sentBefore := s.Elapsed(), s.TotalStats().MessagesSent
	s.Step(node, request(reqID))
	s.RunUntilCond(s.Now().Add(run.cfg.LookupTimeout), func() bool { _, ok := run.answers[reqID]; return ok })
	answer := run.answers[reqID]
	delete(run.answers, reqID)
	return answer, s.Elapsed() - start, s.TotalStats().MessagesSent - sentBefore
}

// lookup runs one lookup of a random ID and checks it.
func (run *kadRun) lookup() lookupSample {
	s := run.sim
	var target peer.ID
	for i := range target {
		target[i] = byte(s.Rand().Uint32())
	}
	node := s.RandomLive()
	k := s.Core(node).(*kademlia.Core).Config().K
	answer, took, messages := run.ask(node, func(reqID uint64) any { return kademlia.Lookup{ReqID: reqID, Target: target} })
	sample := lookupSample{time: took, messages: messages}
	result, ok := answer.(kademlia.LookupResult)
	if !ok || result.Err != nil {
		sample.failed = true
		return sample
	}
	sample.hops, sample.contacted = result.Hops, result.Contacted
	truth := run.trueClosest(target, node, k)
	matched := 0
	for _, p := range result.Closest {
		if slices.Contains(truth, p.ID) {
			matched++
		}
	}
	if len(truth) > 0 {
		sample.overlap = float64(matched) / float64(len(truth))
		sample.closest = len(result.Closest) > 0 && result.Closest[0].ID == truth[0]
	}
	sample.ok = matched == len(truth) && len(result.Closest) == len(truth)
	return sample
}

// trueClosest returns the k live nodes closest to target, the asking node
// excluded, by brute force.
func (run *kadRun) trueClosest(target peer.ID, asking, k int) []peer.ID {
	s := run.sim
	live := s.LiveNodes()
	ids := make([]peer.ID, 0, len(live))
	for _, i := range live {
		if i != asking {
			ids = append(ids, s.Info(i).ID)
		}
	}
	distance := func(id peer.ID) peer.ID {
		var d peer.ID
		for i := range d {
			d[i] = id[i] ^ target[i]
		}
		return d
	}
	slices.SortFunc(ids, func(a, b peer.ID) int {
		da, db := distance(a), distance(b)
		return bytes.Compare(da[:], db[:])
	})
	return ids[:min(k, len(ids))]
}

// record stores immutable record number k from one random node and fetches
// it from another.
func (run *kadRun) record(k int) (lookupSample, int) {
	s := run.sim
	value := sha256.Sum256(fmt.Appendf(nil, "sim record %d seed %d", k, run.cfg.Sim.Seed))
	record := kademlia.NewImmutableRecord(value[:])
	writer := s.RandomLive()
	answer, _, _ := run.ask(writer, func(reqID uint64) any { return kademlia.Put{ReqID: reqID, Record: record} })
	stored := 0
	if put, ok := answer.(kademlia.PutResult); ok && put.Err == nil {
		stored = put.Stored
	}
	reader := s.RandomLive()
	for tries := 0; reader == writer && tries < 8; tries++ {
		reader = s.RandomLive()
	}
	answer, took, messages := run.ask(reader, func(reqID uint64) any { return kademlia.Get{ReqID: reqID, Key: record.Key} })
	sample := lookupSample{time: took, messages: messages}
	get, ok := answer.(kademlia.GetResult)
	if !ok || get.Err != nil {
		sample.failed = true
		return sample, stored
	}
	sample.hops, sample.contacted = get.Hops, get.Contacted
	sample.ok = bytes.Equal(get.Record.Value, record.Value)
	sample.closest, sample.overlap = sample.ok, map[bool]float64{true: 1}[sample.ok]
	return sample, stored
}

// WriteTable prints the result as a readable table.
func (r *KademliaResult) WriteTable(w io.Writer) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "scenario\tkademlia\n")
	fmt.Fprintf(tw, "nodes\t%d (seed %d, latency %s, loss %g, k %d, alpha %d)\n", r.Nodes, r.Seed, r.Latency, r.Loss, r.K, r.Alpha)
	fmt.Fprintf(tw, "bootstrapped\t%d of %d, routing table %.1f contacts on average\n", r.Bootstrapped, r.Nodes, r.TableSizeMean)
	if r.ChurnRate > 0 {
		fmt.Fprintf(tw, "churn\t%.2f kills and joins per second: %d killed, %d joined\n", r.ChurnRate, r.Killed, r.Joined)
	}
	for _, part := range []struct {
		name string
		s    LookupSummary
		what string
	}{{"lookups", r.Lookups, "returned the true k closest"}, {"gets", r.Gets, "found the record"}} {
		s := part.s
		if s.Count == 0 {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d, %.2f %% %s (%d errors or timeouts)\n", part.name, s.Count, 100*s.SuccessRate, part.what, s.Errors)
		if part.name == "lookups" {
			fmt.Fprintf(tw, "  closest node found\t%.2f %%, mean share of the true k closest %.2f %%\n", 100*float64(s.ClosestFound)/float64(s.Count), 100*s.Overlap)
		}
		fmt.Fprintf(tw, "  hops\tp50 %.0f, p99 %.0f, max %.0f, mean %.2f\n", s.HopsP50, s.HopsP99, s.HopsMax, s.HopsMean)
		fmt.Fprintf(tw, "  requests sent\t%.1f mean\n", s.ContactedMean)
		fmt.Fprintf(tw, "  messages meanwhile (all nodes, background included)\tp50 %.0f, p99 %.0f, mean %.1f\n", s.MessagesP50, s.MessagesP99, s.MessagesMean)
		fmt.Fprintf(tw, "  time\tp50 %.0f ms, p99 %.0f ms, max %.0f ms\n", s.TimeP50Ms, s.TimeP99Ms, s.TimeMaxMs)
	}
	if r.Gets.Count > 0 {
		fmt.Fprintf(tw, "puts\tstored on %.1f nodes on average\n", r.PutsStored)
	}
	writeResources(tw, r.Resources, r.Events)
	return tw.Flush()
}

// Charts returns the lookup hop-count histogram.
func (r *KademliaResult) Charts() []Chart {
	var bars []Point
	for h, n := range r.HopsHistogram {
		if r.Lookups.Count > 0 {
			bars = append(bars, Point{float64(h), float64(n) / float64(r.Lookups.Count)})
		}
	}
	return []Chart{{
		Title: fmt.Sprintf("kademlia, %d nodes: lookups by hop count", r.Nodes), XLabel: "hops", YLabel: "share of lookups", YMax: 1,
		Series: []Series{{Name: "lookups", Points: bars, Bars: true}},
	}}
}
