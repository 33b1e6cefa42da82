package agent

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"
)

// The agent writes the Prometheus text exposition format (version 0.0.4)
// itself: github.com/prometheus/client_golang is required by go.mod but its
// own dependencies (client_model, common, procfs, protobuf, ...) are not in
// go.sum, so it cannot be built in this module yet. The metrics below keep the
// names and types a client_golang registry would give them.

// histogram is a Prometheus histogram with fixed buckets, safe for
// concurrent use.
type histogram struct {
	bounds []float64 // upper bounds, increasing; +Inf implied

	mu     sync.Mutex // guards counts, sum, count
	counts []uint64   // per bucket, not cumulative
	sum    float64
	count  uint64
}

func newHistogram(bounds ...float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
}

func (h *histogram) observe(v float64) {
	i := sort.SearchFloat64s(h.bounds, v) // first bound >= v
	h.mu.Lock()
	h.counts[i]++
	h.sum += v
	h.count++
	h.mu.Unlock()
}

// snapshot returns the cumulative bucket counts, the sum and the count.
func (h *histogram) snapshot() ([]uint64, float64, uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	cumulative := make([]uint64, len(h.counts))
	var total uint64
	for i, c := range h.counts {
		total += c
		cumulative[i] = total
	}
	return cumulative, h.sum, h.count
}

// exposition writes metrics in the Prometheus text format.
type exposition struct {
	w *bufio.Writer
}

func (e exposition) header(name, typ, help string) {
	fmt.Fprintf(e.w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

func (e exposition) value(name, typ, help string, v float64) {
	e.header(name, typ, help)
	fmt.Fprintf(e.w, "%s %s\n", name, formatFloat(v))
}

func (e exposition) counter(name, help string, v uint64) { e.value(name, "counter", help, float64(v)) }
func (e exposition) gauge(name, help string, v float64)  { e.value(name, "gauge", help, v) }

func (e exposition) labelled(name, typ, help, label string, values map[string]uint64) {
	e.header(name, typ, help)
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(e.w, "%s{%s=%q} %d\n", name, label, k, values[k])
	}
}

func (e exposition) histogram(name, help string, h *histogram) {
	e.header(name, "histogram", help)
	cumulative, sum, count := h.snapshot()
	for i, bound := range h.bounds {
		fmt.Fprintf(e.w, "%s_bucket{le=%q} %d\n", name, formatFloat(bound), cumulative[i])
	}
	fmt.Fprintf(e.w, "%s_bucket{le=\"+Inf\"} %d\n", name, count)
	fmt.Fprintf(e.w, "%s_sum %s\n%s_count %d\n", name, formatFloat(sum), name, count)
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// agentMetrics are the metrics the agent feeds as events happen; the others
// are read from the node's counters at scrape time.
type agentMetrics struct {
	// hops counts received broadcasts by the number of links they crossed:
	// the overlay's delivery depth, which bounds the broadcast latency
	// (depth × one link's latency).
	hops *histogram
	// propagation measures, for every remote write this agent applies, the
	// time between the write's timestamp (its hybrid logical clock, physical
	// part, taken on the writer) and its arrival here. It includes the
	// clock offset between the two machines and, for a node that was down,
	// the time it was down: it is the age of the news, honestly measured.
	propagation *histogram
}

func newAgentMetrics() *agentMetrics {
	return &agentMetrics{
		hops:        newHistogram(1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 24, 32),
		propagation: newHistogram(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
	}
}

func (a *Agent) serveMetrics(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	if err := a.writeMetrics(ctx, w); err != nil {
		a.logger.Warn("metrics: scrape incomplete", "err", err)
	}
}

// writeMetrics writes every metric; a node that does not answer (closing)
// leaves out the metrics that need it.
func (a *Agent) writeMetrics(ctx context.Context, out io.Writer) error {
	e := exposition{w: bufio.NewWriter(out)}
	defer e.w.Flush()
	stats := a.node.Stats()
	rt := stats.Runtime
	e.counter("p2p_messages_received_total", "Overlay messages received (all protocols).", rt.MessagesIn)
	e.counter("p2p_messages_sent_total", "Overlay messages sent (all protocols).", rt.MessagesOut)
	e.counter("p2p_message_bytes_received_total", "Encoded size of the overlay messages received.", rt.BytesIn)
	e.counter("p2p_message_bytes_sent_total", "Encoded size of the overlay messages sent.", rt.BytesOut)
	e.counter("p2p_send_queue_dropped_total", "Messages dropped on a full send queue.", rt.Dropped)
	e.counter("p2p_malformed_messages_total", "Received frames that failed to decode.", rt.MalformedIn)
	e.counter("p2p_dials_total", "Outgoing connection attempts.", rt.Dials)
	e.counter("p2p_dial_failures_total", "Outgoing connection attempts that failed.", rt.DialFailures)
	e.counter("p2p_link_downs_total", "Overlay links lost.", rt.LinkDowns)
	e.gauge("p2p_connections_open", "Open overlay connections.", float64(rt.ConnectionsOpen))
	e.counter("p2p_reactor_drops_total", "Messages dropped on a full reactor queue.", stats.ReactorDrops)
	if a.tr != nil {
		ts := a.tr.Stats()
		e.counter("p2p_socket_bytes_received_total", "Bytes read from overlay sockets, handshakes and encryption included.", ts.BytesIn)
		e.counter("p2p_socket_bytes_sent_total", "Bytes written to overlay sockets, handshakes and encryption included.", ts.BytesOut)
		e.counter("p2p_handshakes_accepted_total", "Completed Noise handshakes, inbound and outbound.", ts.HandshakesAccepted)
		e.labelled("p2p_handshakes_refused_total", "counter", "Failed Noise handshakes by reason.", "reason", map[string]uint64{
			"bad_secret": ts.RefusedBadSecret, "bad_identity": ts.RefusedBadIdentity, "timeout": ts.RefusedTimeout, "other": ts.RefusedOther,
		})
	}
	e.histogram("p2p_broadcast_hops", "Links crossed by each broadcast received (delivery depth in the tree).", a.metrics.hops)
	e.histogram("p2p_kv_propagation_seconds", "Time from a remote write's timestamp on its writer to its arrival here (includes clock offset).", a.metrics.propagation)
	e.labelled("p2p_handler_runs_total", "counter", "Handler commands run, by result.", "result", map[string]uint64{
		"ok": a.handlers.runsOK.Load(), "error": a.handlers.runsFailed.Load(), "dropped": a.handlers.dropped.Load(),
	})
	e.counter("p2p_api_stream_drops_total", "API event streams closed because the client fell behind.", a.streamDrops.Load())

	members, err := a.node.Members(ctx)
	if err != nil {
		return err
	}
	neighbors, err := a.node.Neighbors(ctx)
	if err != nil {
		return err
	}
	e.gauge("p2p_members", "Live members known, this node included.", float64(len(members)))
	e.gauge("p2p_neighbors", "Members with an open overlay link (the active view).", float64(len(neighbors)))
	st, _, err := a.node.Store().Stats(ctx)
	if err != nil {
		return err
	}
	e.gauge("p2p_store_keys", "Live keys in the replicated store.", float64(st.Keys))
	e.gauge("p2p_store_tombstones", "Deleted keys retained as tombstones.", float64(st.Tombstones))
	e.counter("p2p_store_anti_entropy_rounds_total", "Anti-entropy rounds started by this node.", st.AntiEntropyRounds)
	e.counter("p2p_store_anti_entropy_messages_total", "Anti-entropy messages sent.", st.AntiEntropyMessages)
	e.counter("p2p_store_anti_entropy_bytes_total", "Encoded size of the anti-entropy messages sent.", st.AntiEntropyBytes)
	e.counter("p2p_store_records_repaired_total", "Records applied from anti-entropy.", st.RecordsRepaired)
	e.counter("p2p_store_records_broadcast_total", "Records applied from broadcasts.", st.RecordsBroadcast)
	e.counter("p2p_store_records_rejected_total", "Records from peers refused as invalid or over the limits.", st.RecordsRejected)
	return nil
}
