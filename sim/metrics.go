package sim

import (
	"math"
	"math/bits"
	"slices"
	"time"
)

// MessageID identifies one broadcast message inside a protocol.
type MessageID [16]byte

// Delivery is what a scenario needs to know of a protocol's delivery output.
type Delivery struct {
	ID      MessageID
	Hops    int
	Payload []byte
}

// tracker measures broadcasts: which eligible nodes delivered each message,
// when and after how many hops, and how many payload messages it cost.
type tracker struct {
	messages   []trackedMessage
	indexOf    map[MessageID]int
	receptions map[MessageID]int64 // payload messages received, by protocol ID
	hops       []int64             // deliveries by hop count
	delivered  int64               // deliveries counted so far, all messages
	eligible   int64               // sum of eligible recipients, all messages
	duplicates int64               // deliveries of a message a node already had
}

// trackedMessage is the record of one broadcast.
type trackedMessage struct {
	origin    int
	sentAt    time.Time
	eligible  bitset // nodes alive at send, the origin excluded
	reached   bitset
	count     int // eligible nodes that delivered
	expected  int // eligible count at send
	id        MessageID
	idKnown   bool
	maxHops   int
	lastAt    time.Time
	latencies []time.Duration
}

// bitset is a set of node indices.
type bitset []uint64

func (b bitset) has(i int) bool {
	return i>>6 < len(b) && b[i>>6]&(1<<(uint(i)&63)) != 0
}

func (b *bitset) set(i int) {
	for i>>6 >= len(*b) {
		*b = append(*b, 0)
	}
	(*b)[i>>6] |= 1 << (uint(i) & 63)
}

// each calls fn for every index in b, in increasing order.
func (b bitset) each(fn func(int)) {
	for word, set := range b {
		for set != 0 {
			bit := set & -set
			set &^= bit
			fn(word<<6 + bits.TrailingZeros64(bit))
		}
	}
}

// newTracker returns an empty tracker.
func newTracker() *tracker {
	return &tracker{indexOf: map[MessageID]int{}, receptions: map[MessageID]int64{}}
}

// sent records that message index (the scenario's own numbering) was sent by
// origin at time at, to be delivered by every node in live but the origin.
func (t *tracker) sent(index, origin int, at time.Time, live []int) {
	for len(t.messages) <= index {
		t.messages = append(t.messages, trackedMessage{origin: -1})
	}
	m := &t.messages[index]
	m.origin, m.sentAt = origin, at
	for _, i := range live {
		if i != origin {
			m.eligible.set(i)
			m.expected++
		}
	}
	t.eligible += int64(m.expected)
}

// delivered records that node delivered message index, carrying protocol ID
// id, after hops hops, at time at.
func (t *tracker) deliveredAt(index, node int, id MessageID, hops int, at time.Time) {
	if index < 0 || index >= len(t.messages) || t.messages[index].origin < 0 {
		return
	}
	m := &t.messages[index]
	if !m.idKnown {
		m.id, m.idKnown = id, true
		t.indexOf[id] = index
	}
	if !m.eligible.has(node) {
		return
	}
	if m.reached.has(node) {
		t.duplicates++
		return
	}
	m.reached.set(node)
	m.count++
	t.delivered++
	for len(t.hops) <= hops {
		t.hops = append(t.hops, 0)
	}
	if hops >= 0 {
		t.hops[hops]++
	}
	m.maxHops = max(m.maxHops, hops)
	if at.After(m.lastAt) {
		m.lastAt = at
	}
	m.latencies = append(m.latencies, at.Sub(m.sentAt))
}

// payload records one payload message received for protocol ID id.
func (t *tracker) payload(id MessageID) { t.receptions[id]++ }

// complete reports whether every eligible recipient of every message sent
// so far has delivered it.
func (t *tracker) complete() bool { return t.delivered >= t.eligible }

// MessageResult is the outcome of one broadcast.
type MessageResult struct {
	Index int `json:"index"`
	// Origin is the node that broadcast it.
	Origin int `json:"origin"`
	// SentAtMs is when it was sent, in virtual milliseconds since the start.
	SentAtMs float64 `json:"sent_at_ms"`
	// Expected is the number of nodes that should deliver it: those alive
	// when it was sent, the origin excluded, less those that died before
	// delivering it.
	Expected int `json:"expected"`
	// Delivered is the number of those that delivered it.
	Delivered int `json:"delivered"`
	// Ratio is Delivered / Expected.
	Ratio float64 `json:"delivery_ratio"`
	// Receptions is the number of payload messages received for it.
	Receptions int64 `json:"payload_receptions"`
	// RMR is the relative message redundancy Receptions / Expected − 1.
	RMR float64 `json:"rmr"`
	// MaxHops is the largest hop count at delivery.
	MaxHops int `json:"max_hops"`
	// LastMs is the time from sending until the last delivery, in ms.
	LastMs float64 `json:"last_delivery_ms"`
}

// BroadcastSummary aggregates the broadcasts of a run.
type BroadcastSummary struct {
	Messages int `json:"messages"`
	// DeliveryRatio is all deliveries over all expected deliveries.
	DeliveryRatio float64 `json:"delivery_ratio"`
	// MinRatio is the worst message's delivery ratio.
	MinRatio float64 `json:"min_delivery_ratio"`
	// RMR is the mean relative message redundancy over the messages.
	RMR float64 `json:"rmr"`
	// MaxRMR is the largest relative message redundancy of one message.
	MaxRMR float64 `json:"max_rmr"`
	// MaxHops is the largest hop count of any delivery.
	MaxHops int `json:"max_hops"`
	// MeanHops is the mean hop count of the deliveries.
	MeanHops float64 `json:"mean_hops"`
	// LastP50Ms, LastP99Ms and LastMaxMs are percentiles over the messages
	// of the time until the last node had each.
	LastP50Ms float64 `json:"last_delivery_p50_ms"`
	LastP99Ms float64 `json:"last_delivery_p99_ms"`
	LastMaxMs float64 `json:"last_delivery_max_ms"`
	// DeliveryP50Ms and DeliveryP99Ms are percentiles of the latency of
	// every single delivery.
	DeliveryP50Ms float64 `json:"delivery_p50_ms"`
	DeliveryP99Ms float64 `json:"delivery_p99_ms"`
	// DuplicateDeliveries counts deliveries of a message a node had already
	// delivered (a protocol bug if not zero).
	DuplicateDeliveries int64 `json:"duplicate_deliveries"`
	// HopHistogram[h] is the number of deliveries after h hops.
	HopHistogram []int64 `json:"hop_histogram"`
}

// results computes the per-message results and the summary. A node that is
// dead at the end and never delivered a message is not expected to have.
func (t *tracker) results(alive func(int) bool, epoch time.Time) ([]MessageResult, BroadcastSummary) {
	var (
		out       []MessageResult
		lasts     []float64
		all       []time.Duration
		expected  int64
		delivered int64
		rmrSum    float64
		sum       BroadcastSummary
	)
	sum.MinRatio = 1
	for index := range t.messages {
		m := &t.messages[index]
		if m.origin < 0 {
			continue
		}
		exp := 0
		m.eligible.each(func(node int) {
			if m.reached.has(node) || alive(node) {
				exp++
			}
		})
		r := MessageResult{
			Index: index, Origin: m.origin, SentAtMs: ms(m.sentAt.Sub(epoch)),
			Expected: exp, Delivered: m.count, MaxHops: m.maxHops,
		}
		if m.idKnown {
			r.Receptions = t.receptions[m.id]
		}
		r.Ratio = 1
		if exp > 0 {
			r.Ratio = float64(m.count) / float64(exp)
			r.RMR = float64(r.Receptions)/float64(exp) - 1
		}
		if m.count > 0 {
			r.LastMs = ms(m.lastAt.Sub(m.sentAt))
			lasts = append(lasts, r.LastMs)
		}
		expected += int64(exp)
		delivered += int64(m.count)
		rmrSum += r.RMR
		sum.MaxRMR = max(sum.MaxRMR, r.RMR)
		sum.MinRatio = min(sum.MinRatio, r.Ratio)
		sum.MaxHops = max(sum.MaxHops, r.MaxHops)
		all = append(all, m.latencies...)
		out = append(out, r)
	}
	sum.Messages = len(out)
	sum.DeliveryRatio = 1
	if expected > 0 {
		sum.DeliveryRatio = float64(delivered) / float64(expected)
	}
	if len(out) > 0 {
		sum.RMR = rmrSum / float64(len(out))
	}
	var hopTotal, hopWeighted int64
	for h, n := range t.hops {
		hopTotal += n
		hopWeighted += int64(h) * n
	}
	if hopTotal > 0 {
		sum.MeanHops = float64(hopWeighted) / float64(hopTotal)
	}
	slices.Sort(lasts)
	sum.LastP50Ms, sum.LastP99Ms = percentile(lasts, 0.50), percentile(lasts, 0.99)
	if len(lasts) > 0 {
		sum.LastMaxMs = lasts[len(lasts)-1]
	}
	slices.Sort(all)
	allMs := make([]float64, len(all))
	for i, d := range all {
		allMs[i] = ms(d)
	}
	sum.DeliveryP50Ms, sum.DeliveryP99Ms = percentile(allMs, 0.50), percentile(allMs, 0.99)
	sum.DuplicateDeliveries = t.duplicates
	sum.HopHistogram = slices.Clone(t.hops)
	return out, sum
}

// reachedCurve returns, for the plot, the share of expected deliveries made
// within each delivery latency: points (latency ms, share).
func (t *tracker) reachedCurve(expected int64) []Point {
	var all []time.Duration
	for i := range t.messages {
		all = append(all, t.messages[i].latencies...)
	}
	slices.Sort(all)
	if expected <= 0 || len(all) == 0 {
		return nil
	}
	const maxPoints = 400
	step := max(len(all)/maxPoints, 1)
	points := []Point{{0, 0}}
	for i := step - 1; i < len(all); i += step {
		points = append(points, Point{ms(all[i]), float64(i+1) / float64(expected)})
	}
	if last := len(all) - 1; (last+1)%step != 0 {
		points = append(points, Point{ms(all[last]), float64(len(all)) / float64(expected)})
	}
	return points
}

// percentile returns the q-quantile of sorted values (nearest rank), or 0.
func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// ms converts a duration to float milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// unreached returns the live nodes that some message missed, with how many
// messages each missed, in node order.
func (t *tracker) unreached(alive func(int) bool) (nodes []int, missed map[int]int) {
	missed = map[int]int{}
	for index := range t.messages {
		m := &t.messages[index]
		if m.origin < 0 {
			continue
		}
		m.eligible.each(func(node int) {
			if !m.reached.has(node) && alive(node) {
				if missed[node] == 0 {
					nodes = append(nodes, node)
				}
				missed[node]++
			}
		})
	}
	slices.Sort(nodes)
	return nodes, missed
}
