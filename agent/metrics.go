package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Every agent has its own prometheus.Registry, never the global one, so
// that several agents in one process (as in the tests) each report their
// own node. Two kinds of metrics fill it: histograms the agent feeds as
// events happen (agentMetrics), and the node's, the transport's and the
// store's counters, read when /metrics is scraped (nodeCollector). The Go
// runtime's and the process's standard collectors complete it.

// scrapeTimeout bounds the node calls of one scrape.
const scrapeTimeout = 5 * time.Second

// agentMetrics are the metrics the agent feeds as events happen; the others
// are read from the node's counters at scrape time.
type agentMetrics struct {
	registry *prometheus.Registry
	// hops counts received broadcasts by the number of links they crossed:
	// the overlay's delivery depth, which bounds the broadcast latency
	// (depth × one link's latency).
	hops prometheus.Histogram
	// propagation measures, for every remote write this agent applies, the
	// time between the write's timestamp (its hybrid logical clock, physical
	// part, taken on the writer) and its arrival here. It includes the
	// clock offset between the two machines and, for a node that was down,
	// the time it was down: it is the age of the news, honestly measured.
	propagation prometheus.Histogram
}

func newAgentMetrics() *agentMetrics {
	return &agentMetrics{
		registry: prometheus.NewRegistry(),
		hops: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "p2p_broadcast_hops",
			Help:    "Links crossed by each broadcast received (delivery depth in the tree).",
			Buckets: []float64{1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 24, 32},
		}),
		propagation: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "p2p_kv_propagation_seconds",
			Help:    "Time from a remote write's timestamp on its writer to its arrival here (includes clock offset).",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600},
		}),
	}
}

// registerMetrics fills the agent's registry; New calls it once the node
// and the handler pool exist.
func (a *Agent) registerMetrics() {
	a.metrics.registry.MustRegister(
		a.metrics.hops,
		a.metrics.propagation,
		newNodeCollector(a),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
}

// metricsHandler serves the agent's registry in the format the scraper
// asks for (the text format 0.0.4 by default). A collector that fails is
// logged and the rest is served.
func (a *Agent) metricsHandler() http.Handler {
	return promhttp.HandlerFor(a.metrics.registry, promhttp.HandlerOpts{
		ErrorLog:            promLogger{a.logger},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
	})
}

// promLogger routes promhttp's errors to the agent's logger.
type promLogger struct{ logger *slog.Logger }

func (l promLogger) Println(v ...any) {
	l.logger.Warn("metrics: scrape incomplete", "err", strings.TrimSpace(fmt.Sprintln(v...)))
}

// nodeCollector reads the node's, the transport's, the handler pool's and
// the store's counters at scrape time.
type nodeCollector struct {
	a *Agent

	messagesIn, messagesOut, bytesIn, bytesOut  *prometheus.Desc
	sendDropped, malformed, dials, dialFailures *prometheus.Desc
	linkDowns, connectionsOpen, reactorDrops    *prometheus.Desc
	socketBytesIn, socketBytesOut               *prometheus.Desc
	handshakesAccepted, handshakesRefused       *prometheus.Desc
	connsOverLimit, connsTrimmed                *prometheus.Desc
	handlerRuns, streamDrops                    *prometheus.Desc
	apiRefused                                  *prometheus.Desc
	members, neighbors                          *prometheus.Desc
	clusterRefused                              *prometheus.Desc
	storeKeys, storeTombstones                  *prometheus.Desc
	antiEntropyRounds, antiEntropyMessages      *prometheus.Desc
	antiEntropyBytes, recordsRepaired           *prometheus.Desc
	recordsBroadcast, recordsRejected           *prometheus.Desc
	recordsWithdrawn, revoked                   *prometheus.Desc
	revokedConns, revokedSends                  *prometheus.Desc
	broadcastsRecovered, broadcastsRefused      *prometheus.Desc
	broadcastHopsClamped                        *prometheus.Desc
	memberRecordsRefused, incarnationAttacks    *prometheus.Desc
	unvouchedDials                              *prometheus.Desc
	all                                         []*prometheus.Desc
}

func newNodeCollector(a *Agent) *nodeCollector {
	c := &nodeCollector{a: a}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		d := prometheus.NewDesc(name, help, labels, nil)
		c.all = append(c.all, d)
		return d
	}
	c.messagesIn = desc("p2p_messages_received_total", "Overlay messages received (all protocols).")
	c.messagesOut = desc("p2p_messages_sent_total", "Overlay messages sent (all protocols).")
	c.bytesIn = desc("p2p_message_bytes_received_total", "Encoded size of the overlay messages received.")
	c.bytesOut = desc("p2p_message_bytes_sent_total", "Encoded size of the overlay messages sent.")
	c.sendDropped = desc("p2p_send_queue_dropped_total", "Messages dropped on a full send queue.")
	c.malformed = desc("p2p_malformed_messages_total", "Received frames that failed to decode.")
	c.dials = desc("p2p_dials_total", "Outgoing connection attempts.")
	c.dialFailures = desc("p2p_dial_failures_total", "Outgoing connection attempts that failed.")
	c.linkDowns = desc("p2p_link_downs_total", "Overlay links lost.")
	c.connectionsOpen = desc("p2p_connections_open", "Open overlay connections.")
	c.reactorDrops = desc("p2p_reactor_drops_total", "Messages dropped on a full reactor queue.")
	c.socketBytesIn = desc("p2p_socket_bytes_received_total", "Bytes read from overlay sockets, handshakes and encryption included.")
	c.socketBytesOut = desc("p2p_socket_bytes_sent_total", "Bytes written to overlay sockets, handshakes and encryption included.")
	c.handshakesAccepted = desc("p2p_handshakes_accepted_total", "Completed Noise handshakes, inbound and outbound.")
	c.handshakesRefused = desc("p2p_handshakes_refused_total", "Failed Noise handshakes by reason.", "reason")
	c.connsOverLimit = desc("p2p_connections_over_limit_total", "Connections refused or closed for a transport limit, by limit.", "limit")
	c.connsTrimmed = desc("p2p_connections_trimmed_total", "Idle connections closed by the connection manager over its high-water mark.")
	c.handlerRuns = desc("p2p_handler_runs_total", "Handler commands run, by result.", "result")
	c.streamDrops = desc("p2p_api_stream_drops_total", "API event streams closed because the client fell behind.")
	c.apiRefused = desc("p2p_api_requests_refused_total", "API requests and connections refused by the browser and slow-client protections, by reason.", "reason")
	c.members = desc("p2p_members", "Live members known, this node included.")
	c.neighbors = desc("p2p_neighbors", "Members with an open overlay link (the active view).")
	c.clusterRefused = desc("p2p_cluster_state_refused_total", "Cluster-view state questions over the answer rate, and answers nobody asked for.")
	c.storeKeys = desc("p2p_store_keys", "Live keys in the replicated store.")
	c.storeTombstones = desc("p2p_store_tombstones", "Deleted keys retained as tombstones.")
	c.antiEntropyRounds = desc("p2p_store_anti_entropy_rounds_total", "Anti-entropy rounds started by this node.")
	c.antiEntropyMessages = desc("p2p_store_anti_entropy_messages_total", "Anti-entropy messages sent.")
	c.antiEntropyBytes = desc("p2p_store_anti_entropy_bytes_total", "Encoded size of the anti-entropy messages sent.")
	c.recordsRepaired = desc("p2p_store_records_repaired_total", "Records applied from anti-entropy.")
	c.recordsBroadcast = desc("p2p_store_records_broadcast_total", "Records applied from broadcasts.")
	c.recordsRejected = desc("p2p_store_records_rejected_total", "Records from peers refused or held back, by reason: invalid, bad_signature, revoked_writer, not_admin, future.", "reason")
	c.recordsWithdrawn = desc("p2p_store_records_withdrawn_total", "Records removed because their writer's revocation, dated before them, arrived after them.")
	c.revoked = desc("p2p_revoked_members", "Nodes on the cluster's deny list.")
	c.revokedConns = desc("p2p_revoked_connections_closed_total", "Connections of revoked nodes closed right after their handshake, or when the node was revoked.")
	c.revokedSends = desc("p2p_revoked_sends_dropped_total", "Messages to revoked nodes dropped without a dial.")
	c.broadcastsRecovered = desc("p2p_broadcasts_recovered_total", "Broadcasts missed while cut off and recovered from a new neighbour.")
	c.broadcastsRefused = desc("p2p_broadcasts_refused_total", "Broadcast payloads refused, by reason.", "reason")
	c.broadcastHopsClamped = desc("p2p_broadcast_hops_clamped_total", "Hop counts over the protocol's limit, clamped.")
	c.memberRecordsRefused = desc("p2p_member_records_refused_total", "Member records refused, by reason: signature (not signed by their member), address_taken (another live member holds the address), unintroduced (no two held members introduced it), signature_budget (refused unverified: the message carrying it had already failed its cap of signature checks), duplicate (refused unverified: a second record of one member in a member list), introduction (an introduction whose signature failed its check: dropped, never kept nor relayed).", "reason")
	c.incarnationAttacks = desc("p2p_incarnation_attacks_total", "Claims that this node is suspect or dead at an incarnation above its own (forged), refuted.")
	c.unvouchedDials = desc("p2p_unvouched_dials_total", "Overlay messages not sent because no signed record vouches for the destination's address.")
	return c
}

// Describe sends every descriptor, including those of the transport's
// metrics that an agent on another transport never collects.
func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.all {
		ch <- d
	}
}

// Collect reads the counters. A node that does not answer (closing) leaves
// out the membership and store metrics; the error is logged.
func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	a := c.a
	stats := a.node.Stats()
	rt := stats.Runtime
	counter(c.messagesIn, rt.MessagesIn)
	counter(c.messagesOut, rt.MessagesOut)
	counter(c.bytesIn, rt.BytesIn)
	counter(c.bytesOut, rt.BytesOut)
	counter(c.sendDropped, rt.Dropped)
	counter(c.malformed, rt.MalformedIn)
	counter(c.dials, rt.Dials)
	counter(c.dialFailures, rt.DialFailures)
	counter(c.linkDowns, rt.LinkDowns)
	counter(c.revokedConns, rt.DeniedConns)
	counter(c.revokedSends, rt.DeniedSends)
	gauge(c.connectionsOpen, float64(rt.ConnectionsOpen))
	counter(c.connsTrimmed, rt.ConnsTrimmed)
	counter(c.reactorDrops, stats.ReactorDrops)
	pt := stats.Plumtree
	counter(c.broadcastsRecovered, pt.MessagesRecovered)
	counter(c.broadcastsRefused, pt.RefusedStale, "stale")
	counter(c.broadcastsRefused, pt.RefusedFuture, "future")
	counter(c.broadcastsRefused, pt.RefusedSignature, "signature")
	counter(c.broadcastsRefused, pt.Refused, "invalid")
	counter(c.broadcastHopsClamped, pt.HopsClamped)
	gs := stats.Gossip
	counter(c.memberRecordsRefused, gs.InvalidRecords, "signature")
	counter(c.memberRecordsRefused, gs.AddressTaken, "address_taken")
	counter(c.memberRecordsRefused, gs.Unintroduced, "unintroduced")
	counter(c.memberRecordsRefused, gs.SignatureBudgetRefused, "signature_budget")
	counter(c.memberRecordsRefused, gs.DuplicateRecords, "duplicate")
	counter(c.memberRecordsRefused, gs.InvalidIntroductions, "introduction")
	counter(c.incarnationAttacks, gs.IncarnationAttacks)
	counter(c.unvouchedDials, gs.UnvouchedDials)
	if a.tr != nil {
		ts := a.tr.Stats()
		counter(c.socketBytesIn, ts.BytesIn)
		counter(c.socketBytesOut, ts.BytesOut)
		counter(c.handshakesAccepted, ts.HandshakesAccepted)
		counter(c.handshakesRefused, ts.RefusedBadSecret, "bad_secret")
		counter(c.handshakesRefused, ts.RefusedBadIdentity, "bad_identity")
		counter(c.handshakesRefused, ts.RefusedTimeout, "timeout")
		counter(c.handshakesRefused, ts.RefusedClosedByPeer, "closed_by_peer")
		counter(c.handshakesRefused, ts.RefusedProtocol, "protocol")
		counter(c.handshakesRefused, ts.RefusedOverload, "overload")
		counter(c.handshakesRefused, ts.RefusedPerAddress, "per_address")
		counter(c.connsOverLimit, ts.ConnsOverLimit, "total")
		counter(c.connsOverLimit, ts.ConnsOverPeerLimit, "per_peer")
		counter(c.connsOverLimit, ts.ConnsOverBufferLimit, "buffer")
		counter(c.connsOverLimit, ts.FrameTimeouts, "frame_timeout")
	}
	counter(c.clusterRefused, a.stateRefusals())
	counter(c.handlerRuns, a.handlers.runsOK.Load(), "ok")
	counter(c.handlerRuns, a.handlers.runsFailed.Load(), "error")
	counter(c.handlerRuns, a.handlers.dropped.Load(), "dropped")
	counter(c.streamDrops, a.streamDrops.Load())
	for _, reason := range refusalReasons {
		counter(c.apiRefused, a.refusals.get(reason), reason)
	}

	ctx, cancel := context.WithTimeout(a.ctx, scrapeTimeout)
	defer cancel()
	members, err := a.node.Members(ctx)
	if err != nil {
		a.logger.Warn("metrics: scrape incomplete: members", "err", err)
		return
	}
	neighbors, err := a.node.Neighbors(ctx)
	if err != nil {
		a.logger.Warn("metrics: scrape incomplete: neighbors", "err", err)
		return
	}
	gauge(c.members, float64(len(members)))
	gauge(c.neighbors, float64(len(neighbors)))
	st, _, err := a.node.Store().Stats(ctx)
	if err != nil {
		a.logger.Warn("metrics: scrape incomplete: store", "err", err)
		return
	}
	gauge(c.storeKeys, float64(st.Keys))
	gauge(c.storeTombstones, float64(st.Tombstones))
	counter(c.antiEntropyRounds, st.AntiEntropyRounds)
	counter(c.antiEntropyMessages, st.AntiEntropyMessages)
	counter(c.antiEntropyBytes, st.AntiEntropyBytes)
	counter(c.recordsRepaired, st.RecordsRepaired)
	counter(c.recordsBroadcast, st.RecordsBroadcast)
	counter(c.recordsRejected, st.RecordsRejected, "invalid")
	counter(c.recordsRejected, st.RecordsForged, "bad_signature")
	counter(c.recordsRejected, st.RecordsRevoked, "revoked_writer")
	counter(c.recordsRejected, st.RecordsUnauthorized, "not_admin")
	counter(c.recordsRejected, st.RecordsDeferred, "future")
	counter(c.recordsWithdrawn, st.RecordsWithdrawn)
	if revoked, err := a.node.Revoked(ctx); err == nil {
		gauge(c.revoked, float64(len(revoked)))
	}
}
