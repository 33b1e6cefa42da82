package sim

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/p2p-go/p2p/gossip"
	"github.com/p2p-go/p2p/overlay"
	"github.com/p2p-go/p2p/plumtree"
)

// Defaults of BroadcastConfig.
const (
	DefaultNodes           = 1000
	DefaultMessages        = 100
	DefaultPayloadSize     = 256
	DefaultJoinInterval    = 10 * time.Millisecond
	DefaultSettle          = 30 * time.Second
	DefaultMessageInterval = 100 * time.Millisecond
	DefaultDrain           = 30 * time.Second
	DefaultHealCheck       = 100 * time.Millisecond
	DefaultTail            = 2 * time.Second
	DefaultChurnPeriod     = 10 * time.Second
	// DefaultMassFailInterval is the time between the messages of the
	// massfail scenario: about one HyParView keepalive period, so that the
	// series shows the overlay repairing itself message by message.
	DefaultMassFailInterval = time.Second
)

// payloadHeader starts every payload the scenarios broadcast, followed by
// the message's index (4 bytes), so a delivery names the message it is.
const payloadHeader = "SIM1"

// BroadcastConfig configures the broadcast and massfail scenarios. Zero
// fields take the defaults above.
type BroadcastConfig struct {
	// Sim configures the engine (seed, latency, loss, byte accounting,
	// progress line).
	Sim Config
	// Protocol is the overlay under test; required.
	Protocol Protocol
	// Nodes is the number of nodes that join (default 1000).
	Nodes int
	// Messages is the number of messages broadcast from random live nodes
	// (default 100).
	Messages int
	// PayloadSize is the size of each message's payload in bytes (default
	// 256, at least 8).
	PayloadSize int
	// JoinInterval staggers the joins: node i joins at i × JoinInterval,
	// through a random node that joined before it (default 10 ms).
	JoinInterval time.Duration
	// Settle is how long the overlay runs after the last join before
	// anything is measured (default 30 s).
	Settle time.Duration
	// MessageInterval separates two broadcasts (default 100 ms; 1 s for
	// massfail).
	MessageInterval time.Duration
	// Drain bounds the wait for deliveries after the last broadcast
	// (default 30 s).
	Drain time.Duration
	// Tail is how long the run goes on after the last delivery, so that
	// redundant payloads still in flight are counted (default 2 s).
	Tail time.Duration
	// KillFraction, in (0, 1), makes this the massfail scenario: after
	// settling, that share of the nodes is killed at once, then the messages
	// are sent.
	KillFraction float64
	// ChurnFraction, in [0, 1), replaces that share of the nodes before
	// anything is measured: after settling, as many nodes crash one by one
	// as ChurnFraction × Nodes, as many new ones join, evenly spread over
	// ChurnPeriod, and the overlay settles again for Settle.
	ChurnFraction float64
	// ChurnPeriod is the time the churn is spread over (default 10 s).
	ChurnPeriod time.Duration
	// HealCheck is how often massfail checks whether the overlay has healed
	// (default 100 ms).
	HealCheck time.Duration
}

// withDefaults returns a copy of c with the zero fields filled, or an error
// wrapping ErrConfig that names the invalid field.
func (c BroadcastConfig) withDefaults() (BroadcastConfig, error) {
	if c.Protocol == nil {
		return c, fmt.Errorf("%w: BroadcastConfig.Protocol is required", ErrConfig)
	}
	fill := func(v *time.Duration, d time.Duration, name string) error {
		if *v < 0 {
			return fmt.Errorf("%w: BroadcastConfig.%s %v is negative", ErrConfig, name, *v)
		}
		if *v == 0 {
			*v = d
		}
		return nil
	}
	fillInt := func(v *int, d int, name string) error {
		if *v < 0 {
			return fmt.Errorf("%w: BroadcastConfig.%s %d is negative", ErrConfig, name, *v)
		}
		if *v == 0 {
			*v = d
		}
		return nil
	}
	interval := DefaultMessageInterval
	if c.KillFraction > 0 {
		interval = DefaultMassFailInterval
	}
	for _, err := range []error{
		fillInt(&c.Nodes, DefaultNodes, "Nodes"),
		fillInt(&c.Messages, DefaultMessages, "Messages"),
		fillInt(&c.PayloadSize, DefaultPayloadSize, "PayloadSize"),
		fill(&c.JoinInterval, DefaultJoinInterval, "JoinInterval"),
		fill(&c.Settle, DefaultSettle, "Settle"),
		fill(&c.MessageInterval, interval, "MessageInterval"),
		fill(&c.Drain, DefaultDrain, "Drain"),
		fill(&c.HealCheck, DefaultHealCheck, "HealCheck"),
		fill(&c.Tail, DefaultTail, "Tail"),
		fill(&c.ChurnPeriod, DefaultChurnPeriod, "ChurnPeriod"),
	} {
		if err != nil {
			return c, err
		}
	}
	if c.Nodes < 2 {
		return c, fmt.Errorf("%w: BroadcastConfig.Nodes %d: need at least 2", ErrConfig, c.Nodes)
	}
	if c.PayloadSize < len(payloadHeader)+4 {
		return c, fmt.Errorf("%w: BroadcastConfig.PayloadSize %d: need at least %d", ErrConfig, c.PayloadSize, len(payloadHeader)+4)
	}
	if c.ChurnFraction < 0 || c.ChurnFraction >= 1 || math.IsNaN(c.ChurnFraction) {
		return c, fmt.Errorf("sim: BroadcastConfig.ChurnFraction %v is outside [0, 1)", c.ChurnFraction)
	}
	if c.KillFraction < 0 || c.KillFraction >= 1 || math.IsNaN(c.KillFraction) {
		return c, fmt.Errorf("%w: BroadcastConfig.KillFraction %v is outside [0, 1)", ErrConfig, c.KillFraction)
	}
	return c, nil
}

// BroadcastResult is what the broadcast and massfail scenarios measured.
type BroadcastResult struct {
	Scenario string  `json:"scenario"`
	Protocol string  `json:"protocol"`
	Nodes    int     `json:"nodes"`
	Seed     uint64  `json:"seed"`
	Latency  string  `json:"latency"`
	Loss     float64 `json:"loss"`
	Payload  int     `json:"payload_bytes"`
	// JoinedMs is when the last node joined, SettledMs when measuring
	// started, EndMs when the run ended (virtual ms since the start).
	JoinedMs  float64 `json:"joined_ms"`
	SettledMs float64 `json:"settled_ms"`
	EndMs     float64 `json:"end_ms"`
	// Summary aggregates the broadcasts; PerMessage details each.
	Summary    BroadcastSummary `json:"summary"`
	PerMessage []MessageResult  `json:"per_message"`
	// BytesPerNodePerMessage is every byte sent during the message phase
	// (payloads, announcements, membership upkeep, with framing and AEAD
	// tags), per live node and per message; zero without byte counting.
	BytesPerNodePerMessage float64 `json:"bytes_per_node_per_message"`
	// MessagesPerNodePerMessage is the same count in messages.
	MessagesPerNodePerMessage float64 `json:"messages_per_node_per_message"`
	// PhaseTypes is the traffic of the message phase by message type.
	PhaseTypes []TypeStats `json:"message_phase_types"`
	// MassFail holds the massfail scenario's own figures.
	MassFail *MassFailResult `json:"massfail,omitempty"`
	// Reached is the share of expected deliveries made within each delivery
	// latency (x: ms, y: share), for the plot.
	Reached []Point `json:"reached_curve"`
	// Events is the number of engine events processed.
	Events uint64 `json:"events"`
	// Churned is the number of nodes replaced before the measurements
	// (BroadcastConfig.ChurnFraction).
	Churned int `json:"churned,omitempty"`
	// Unreached describes up to ten live nodes that missed broadcasts,
	// UnreachedCount counts them all.
	Unreached      []UnreachedNode `json:"unreached,omitempty"`
	UnreachedCount int             `json:"unreached_count,omitempty"`
	// Resources is what the run cost the machine (not deterministic).
	Resources Resources `json:"resources"`
}

// MassFailResult holds the massfail scenario's figures.
type MassFailResult struct {
	KillFraction float64 `json:"kill_fraction"`
	Killed       int     `json:"killed"`
	Survivors    int     `json:"survivors"`
	// KilledAtMs is when the nodes were killed (virtual ms since the start).
	KilledAtMs float64 `json:"killed_at_ms"`
	// FirstRatio is the delivery ratio of the first message, sent at the
	// instant of the failure.
	FirstRatio float64 `json:"first_message_delivery_ratio"`
	// HealMs is the time from the failure until every survivor's neighbours
	// were all alive and the survivors' overlay was connected; -1 if that
	// never happened or the protocol cannot list neighbours.
	HealMs float64 `json:"heal_ms"`
	// HealedRatio is the delivery ratio of a message sent the moment the
	// overlay was found healed (-1 when it never was).
	HealedRatio float64 `json:"healed_message_delivery_ratio"`
	// HealedMessage is the index of that message (-1 when none was sent).
	HealedMessage int `json:"healed_message_index"`
	// RecoveredMs is the time from the failure to the send of the first
	// message from which every later message reached every survivor; -1 if
	// the last message did not.
	RecoveredMs float64 `json:"recovered_ms"`
	// SinceFailureRatio is the delivery ratio of all the scheduled messages
	// (those sent from the failure on, the heal probe excluded): deliveries
	// over expected deliveries to survivors.
	SinceFailureRatio float64 `json:"since_failure_delivery_ratio"`
	// CompleteMessages is the number of those messages that reached every
	// survivor, of SinceFailureMessages.
	CompleteMessages     int `json:"complete_messages"`
	SinceFailureMessages int `json:"since_failure_messages"`
	// MessagesRecovered is the number of deliveries, summed over the
	// survivors, of messages recovered from a new neighbour's summary
	// after the failure (plumtree Stats.MessagesRecovered; membership
	// broadcasts of the gossip protocol included; -1 when the protocol does
	// not tell).
	MessagesRecovered int64 `json:"messages_recovered"`
}

// encodePayload returns the payload of message index.
func encodePayload(index, size int) []byte {
	payload := make([]byte, size)
	copy(payload, payloadHeader)
	binary.BigEndian.PutUint32(payload[len(payloadHeader):], uint32(index))
	for i := len(payloadHeader) + 4; i < size; i++ {
		payload[i] = byte(i)
	}
	return payload
}

// decodePayload returns the index of a scenario payload.
func decodePayload(payload []byte) (int, bool) {
	if len(payload) < len(payloadHeader)+4 || string(payload[:len(payloadHeader)]) != payloadHeader {
		return 0, false
	}
	return int(binary.BigEndian.Uint32(payload[len(payloadHeader):])), true
}

// broadcastRun is the state of one broadcast or massfail run.
type broadcastRun struct {
	cfg       BroadcastConfig
	sim       *Sim
	track     *tracker
	phase     string
	sentCount int
	err       error
	// recoveredAtKill is each survivor's plumtree Stats.MessagesRecovered
	// at the failure, so that massfail counts the recoveries after it.
	recoveredAtKill map[int]uint64
}

// RunBroadcast runs the broadcast scenario (or massfail, when
// cfg.KillFraction > 0): cfg.Nodes nodes join one after another through a
// random earlier node, the overlay settles, then cfg.Messages messages are
// broadcast from random live nodes, and every delivery and every payload
// message is measured.
func RunBroadcast(cfg BroadcastConfig) (*BroadcastResult, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	wallClock := cfg.Sim.Clock()
	wallStart := wallClock()
	run := &broadcastRun{cfg: cfg, track: newTracker(), phase: "joining"}
	simCfg := cfg.Sim
	userObserver, userOnMessage, userStatus := simCfg.Observer, simCfg.OnMessage, simCfg.Status
	simCfg.Observer = func(now time.Time, node int, out any) {
		if d, ok := cfg.Protocol.Delivery(out); ok {
			if index, ok := decodePayload(d.Payload); ok {
				run.track.deliveredAt(index, node, d.ID, d.Hops, now)
			}
		}
		if userObserver != nil {
			userObserver(now, node, out)
		}
	}
	simCfg.OnMessage = func(now time.Time, from, to int, msg any) {
		if id, ok := cfg.Protocol.PayloadMessage(msg); ok {
			run.track.payload(id)
		}
		if userOnMessage != nil {
			userOnMessage(now, from, to, msg)
		}
	}
	simCfg.Status = func() string {
		status := run.phase
		if run.sentCount > 0 {
			status += fmt.Sprintf(" %d/%d sent, %d/%d delivered", run.sentCount, cfg.Messages,
				run.track.delivered, run.track.eligible)
		}
		if userStatus != nil {
			status += " " + userStatus()
		}
		return status
	}
	s, err := New(simCfg)
	if err != nil {
		return nil, err
	}
	run.sim = s
	defer s.FinishProgress()

	if err := run.join(); err != nil {
		return nil, err
	}
	joined := s.Elapsed()
	s.RunFor(cfg.Settle)
	churned := 0
	if cfg.ChurnFraction > 0 {
		run.phase = "churning"
		if churned, err = run.churn(); err != nil {
			return nil, err
		}
		s.RunFor(cfg.Settle)
	}
	run.phase = "measuring"
	settled := s.Elapsed()
	before := s.TotalStats()
	typesBefore := s.TypeStats()
	liveAtStart := s.LiveCount()

	var mass *MassFailResult
	if cfg.KillFraction > 0 {
		mass = run.massFail()
	} else {
		run.sendMessages(cfg.Messages)
		s.RunUntilCond(s.Now().Add(time.Duration(cfg.Messages)*cfg.MessageInterval+cfg.Drain), func() bool {
			return run.sentCount == cfg.Messages && run.track.complete()
		})
	}
	s.RunFor(cfg.Tail)
	if run.err != nil {
		return nil, run.err
	}
	after := s.TotalStats()
	perMessage, summary := run.track.results(s.Alive, s.Epoch())
	result := &BroadcastResult{
		Scenario:   "broadcast",
		Protocol:   cfg.Protocol.Name(),
		Nodes:      cfg.Nodes,
		Seed:       cfg.Sim.Seed,
		Latency:    s.Latency().String(),
		Loss:       cfg.Sim.Loss,
		Payload:    cfg.PayloadSize,
		JoinedMs:   ms(joined),
		SettledMs:  ms(settled),
		EndMs:      ms(s.Elapsed()),
		Summary:    summary,
		PerMessage: perMessage,
		PhaseTypes: diffTypes(s.TypeStats(), typesBefore),
		MassFail:   mass,
		Reached:    run.track.reachedCurve(expectedTotal(perMessage)),
		Events:     s.Events(),
		Churned:    churned,
	}
	result.Unreached, result.UnreachedCount = run.describeUnreached()
	if mass != nil {
		result.Scenario = "massfail"
		run.finishMassFail(mass, perMessage)
	}
	if sent := len(perMessage); sent > 0 {
		perNode := float64(max(liveAtStart, 1)) * float64(sent)
		result.BytesPerNodePerMessage = float64(after.BytesSent-before.BytesSent) / perNode
		result.MessagesPerNodePerMessage = float64(after.MessagesSent-before.MessagesSent) / perNode
	}
	result.Resources = Measure(cfg.Nodes, wallStart, wallClock)
	return result, nil
}

// join adds the nodes one by one, each joining through a random live node
// that joined before it, and runs until the last has joined.
func (run *broadcastRun) join() error {
	s, cfg := run.sim, run.cfg
	for i := range cfg.Nodes {
		s.At(s.Epoch().Add(time.Duration(i)*cfg.JoinInterval), func() {
			if run.err != nil {
				return
			}
			var contacts []string
			if s.LiveCount() > 0 {
				contacts = []string{s.Info(s.RandomLive()).Addr}
			}
			index, err := s.AddNode(cfg.Protocol.NewCore)
			if err != nil {
				run.err = err
				return
			}
			s.Step(index, cfg.Protocol.JoinInput(contacts))
		})
	}
	s.RunUntil(s.Epoch().Add(time.Duration(cfg.Nodes-1) * cfg.JoinInterval))
	return run.err
}

// churn replaces ChurnFraction of the live nodes, one crash and one join at
// a time, evenly over ChurnPeriod, and runs until the last has joined; it
// returns the number of nodes replaced.
func (run *broadcastRun) churn() (int, error) {
	s, cfg := run.sim, run.cfg
	count := int(math.Round(cfg.ChurnFraction * float64(s.LiveCount())))
	if count == 0 {
		return 0, nil
	}
	step := cfg.ChurnPeriod / time.Duration(count)
	start := s.Now()
	for k := range count {
		s.At(start.Add(time.Duration(k)*step), func() {
			if run.err != nil {
				return
			}
			s.Kill(s.RandomLive())
			contacts := []string{s.Info(s.RandomLive()).Addr}
			index, err := s.AddNode(cfg.Protocol.NewCore)
			if err != nil {
				run.err = err
				return
			}
			s.Step(index, cfg.Protocol.JoinInput(contacts))
		})
	}
	s.RunFor(cfg.ChurnPeriod)
	return count, run.err
}

// sendMessages schedules count broadcasts, one every MessageInterval from
// now, each from a random live node.
func (run *broadcastRun) sendMessages(count int) {
	start := run.sim.Now()
	for k := range count {
		run.sim.At(start.Add(time.Duration(k)*run.cfg.MessageInterval), func() { run.sendOne() })
	}
}

// sendOne broadcasts the next message from a random live node.
func (run *broadcastRun) sendOne() {
	s := run.sim
	index := run.sentCount
	run.sentCount++
	origin := s.RandomLive()
	if origin < 0 {
		return
	}
	run.track.sent(index, origin, s.Now(), s.LiveNodes())
	s.Step(origin, run.cfg.Protocol.BroadcastInput(encodePayload(index, run.cfg.PayloadSize)))
}

// massFail kills KillFraction of the nodes at once, sends the messages
// starting at that instant, watches the overlay heal, and sends one more
// message the moment it has.
func (run *broadcastRun) massFail() *MassFailResult {
	s, cfg := run.sim, run.cfg
	victims := int(math.Round(cfg.KillFraction * float64(s.LiveCount())))
	live := s.LiveNodes()
	s.Rand().Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
	for _, i := range live[:victims] {
		s.Kill(i)
	}
	run.recoveredAtKill = map[int]uint64{}
	for _, i := range s.LiveNodes() {
		if st, ok := plumtreeStats(s.Core(i)); ok {
			run.recoveredAtKill[i] = st.MessagesRecovered
		}
	}
	killedAt := s.Elapsed()
	mass := &MassFailResult{
		KillFraction: cfg.KillFraction, Killed: victims, Survivors: s.LiveCount(),
		KilledAtMs: ms(killedAt), HealMs: -1, HealedRatio: -1, HealedMessage: -1, RecoveredMs: -1,
	}
	run.phase = "after failure"
	run.sendMessages(cfg.Messages)
	lister, canList := cfg.Protocol.(NeighborLister)
	if canList {
		var check func()
		check = func() {
			if !run.healed(lister) {
				s.After(cfg.HealCheck, check)
				return
			}
			mass.HealMs = ms(s.Elapsed() - killedAt)
			run.phase = "healed"
			run.healProbe(cfg.Messages) // the index after the scheduled messages
		}
		s.After(0, check)
	}
	end := s.Now().Add(time.Duration(cfg.Messages)*cfg.MessageInterval + cfg.Drain)
	s.RunUntilCond(end, func() bool {
		healDone := !canList || mass.HealMs >= 0
		return healDone && run.sentCount >= cfg.Messages && run.track.complete()
	})
	return mass
}

// healProbe sends the message that measures delivery once healed. It uses
// the fixed index probeIndex so that the scheduled messages keep theirs.
func (run *broadcastRun) healProbe(probeIndex int) {
	s := run.sim
	origin := s.RandomLive()
	if origin < 0 {
		return
	}
	run.track.sent(probeIndex, origin, s.Now(), s.LiveNodes())
	s.Step(origin, run.cfg.Protocol.BroadcastInput(encodePayload(probeIndex, run.cfg.PayloadSize)))
}

// healed reports whether every live node has at least one neighbour, all
// its neighbours are alive, and the live nodes' overlay is connected.
func (run *broadcastRun) healed(lister NeighborLister) bool {
	s := run.sim
	live := s.LiveNodes()
	if len(live) == 0 {
		return true
	}
	adjacency := make(map[int][]int, len(live))
	for _, i := range live {
		neighbors := lister.Neighbors(s.Core(i))
		if len(neighbors) == 0 {
			return false
		}
		for _, id := range neighbors {
			j := s.Lookup(id)
			if !s.Alive(j) {
				return false
			}
			adjacency[i] = append(adjacency[i], j)
			adjacency[j] = append(adjacency[j], i)
		}
	}
	seen := map[int]bool{live[0]: true}
	queue := []int{live[0]}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		for _, j := range adjacency[i] {
			if !seen[j] {
				seen[j] = true
				queue = append(queue, j)
			}
		}
	}
	return len(seen) == len(live)
}

// finishMassFail fills the figures that need the per-message results.
func (run *broadcastRun) finishMassFail(mass *MassFailResult, perMessage []MessageResult) {
	cfg := run.cfg
	for _, r := range perMessage {
		switch {
		case r.Index == 0:
			mass.FirstRatio = r.Ratio
		case r.Index == cfg.Messages:
			mass.HealedRatio, mass.HealedMessage = r.Ratio, r.Index
		}
	}
	var delivered, expected int
	for _, r := range perMessage {
		if r.Index >= cfg.Messages {
			continue
		}
		mass.SinceFailureMessages++
		delivered += r.Delivered
		expected += r.Expected
		if r.Delivered == r.Expected {
			mass.CompleteMessages++
		}
	}
	mass.SinceFailureRatio = 1
	if expected > 0 {
		mass.SinceFailureRatio = float64(delivered) / float64(expected)
	}
	mass.MessagesRecovered = -1
	for _, i := range run.sim.LiveNodes() {
		if st, ok := plumtreeStats(run.sim.Core(i)); ok {
			mass.MessagesRecovered = max(mass.MessagesRecovered, 0) + int64(st.MessagesRecovered-run.recoveredAtKill[i])
		}
	}
	// The scheduled messages, in order, without the heal probe.
	recovered := -1.0
	for k := len(perMessage) - 1; k >= 0; k-- {
		r := perMessage[k]
		if r.Index >= cfg.Messages {
			continue
		}
		if r.Ratio < 1 {
			break
		}
		recovered = r.SentAtMs - mass.KilledAtMs
	}
	mass.RecoveredMs = recovered
}

// plumtreeStats returns the counters of the Plumtree core inside core, for
// the protocols of this package.
func plumtreeStats(core overlay.Core) (plumtree.Stats, bool) {
	switch c := core.(type) {
	case *gossip.Core:
		return c.Plumtree().Stats(), true
	case *treeCore:
		return c.pt.Stats(), true
	}
	return plumtree.Stats{}, false
}

// expectedTotal sums the expected deliveries of the messages.
func expectedTotal(results []MessageResult) int64 {
	var total int64
	for _, r := range results {
		total += int64(r.Expected)
	}
	return total
}

// diffTypes returns after − before, by message type, dropping types
// without traffic in between.
func diffTypes(after, before []TypeStats) []TypeStats {
	old := make(map[string]TypeStats, len(before))
	for _, t := range before {
		old[t.Type] = t
	}
	var out []TypeStats
	for _, t := range after {
		b := old[t.Type]
		d := TypeStats{Type: t.Type, Sent: t.Sent - b.Sent, Received: t.Received - b.Received,
			Lost: t.Lost - b.Lost, Bytes: t.Bytes - b.Bytes}
		if d.Sent != 0 || d.Received != 0 {
			out = append(out, d)
		}
	}
	return out
}
