package sim

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// newTable returns a tabwriter for aligned report columns.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// mib formats bytes as MiB.
func mib(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }

// writeResources prints the resource lines of a report.
func writeResources(tw io.Writer, r Resources, events uint64) {
	fmt.Fprintf(tw, "memory\t%s heap in use after GC, %.1f KiB per node\n", mib(float64(r.HeapInuse)), r.HeapPerNode/1024)
	fmt.Fprintf(tw, "cpu\t%.2f s (%.2f ms per node), wall %.2f s\n", r.CPU.Seconds(), float64(r.CPUPerNode)/1e6, r.Wall.Seconds())
	rate := 0.0
	if r.Wall > 0 {
		rate = float64(events) / r.Wall.Seconds()
	}
	fmt.Fprintf(tw, "events\t%d (%.0f per second of wall time)\n", events, rate)
}

// WriteTable prints the result as a readable table.
func (r *BroadcastResult) WriteTable(w io.Writer) error {
	tw := newTable(w)
	s := r.Summary
	fmt.Fprintf(tw, "scenario\t%s\n", r.Scenario)
	fmt.Fprintf(tw, "protocol\t%s\n", r.Protocol)
	fmt.Fprintf(tw, "nodes\t%d (seed %d, latency %s, loss %g, payload %d B)\n", r.Nodes, r.Seed, r.Latency, r.Loss, r.Payload)
	fmt.Fprintf(tw, "virtual time\tjoined %.1f s, measuring from %.1f s, ended %.1f s\n", r.JoinedMs/1000, r.SettledMs/1000, r.EndMs/1000)
	if r.Churned > 0 {
		fmt.Fprintf(tw, "churn\t%d nodes crashed and %d joined before the measurements\n", r.Churned, r.Churned)
	}
	if m := r.MassFail; m != nil {
		fmt.Fprintf(tw, "killed\t%d of %d (%.0f %%) at %.1f s, %d survivors\n", m.Killed, m.Killed+m.Survivors, 100*m.KillFraction, m.KilledAtMs/1000, m.Survivors)
		fmt.Fprintf(tw, "first message after failure\t%.3f %% delivered\n", 100*m.FirstRatio)
		if m.HealMs >= 0 {
			fmt.Fprintf(tw, "overlay healed\tafter %.1f s (all neighbours alive, survivors connected)\n", m.HealMs/1000)
			fmt.Fprintf(tw, "message sent once healed\t%.3f %% delivered\n", 100*m.HealedRatio)
		} else {
			fmt.Fprintf(tw, "overlay healed\tnot within the run\n")
		}
		fmt.Fprintf(tw, "messages sent from the failure on\t%.3f %% delivered to survivors; %d of %d reached every survivor\n",
			100*m.SinceFailureRatio, m.CompleteMessages, m.SinceFailureMessages)
		if m.MessagesRecovered >= 0 {
			fmt.Fprintf(tw, "recovered from summaries\t%d deliveries after the failure (messages a survivor missed while cut off, membership broadcasts included)\n", m.MessagesRecovered)
		}
		if m.RecoveredMs >= 0 {
			fmt.Fprintf(tw, "full delivery from\tthe message sent %.1f s after the failure on\n", m.RecoveredMs/1000)
		} else {
			fmt.Fprintf(tw, "full delivery from\tnever (the last message missed nodes)\n")
		}
	}
	fmt.Fprintf(tw, "messages\t%d\n", s.Messages)
	fmt.Fprintf(tw, "delivery ratio\t%.3f %% (worst message %.3f %%)\n", 100*s.DeliveryRatio, 100*s.MinRatio)
	for _, u := range r.Unreached {
		rejoined := ""
		if u.Rejoined {
			rejoined = ", joined in the churn"
		}
		fmt.Fprintf(tw, "unreached\tnode %d (%.10s%s) missed %d: active view %d, passive %d, members %d; in %d active and %d passive views\n",
			u.Index, u.ID, rejoined, u.Missed, u.Active, u.Passive, u.Members, u.InActiveViews, u.InPassiveViews)
	}
	if r.UnreachedCount > len(r.Unreached) {
		fmt.Fprintf(tw, "unreached\t%d more nodes\n", r.UnreachedCount-len(r.Unreached))
	}
	fmt.Fprintf(tw, "RMR\t%.3f mean, %.3f worst message\n", s.RMR, s.MaxRMR)
	fmt.Fprintf(tw, "hops\tlargest %d, mean %.2f\n", s.MaxHops, s.MeanHops)
	fmt.Fprintf(tw, "time to last node\tp50 %.0f ms, p99 %.0f ms, max %.0f ms\n", s.LastP50Ms, s.LastP99Ms, s.LastMaxMs)
	fmt.Fprintf(tw, "delivery latency\tp50 %.0f ms, p99 %.0f ms\n", s.DeliveryP50Ms, s.DeliveryP99Ms)
	if s.DuplicateDeliveries > 0 {
		fmt.Fprintf(tw, "DUPLICATE DELIVERIES\t%d\n", s.DuplicateDeliveries)
	}
	if r.BytesPerNodePerMessage > 0 {
		fmt.Fprintf(tw, "bytes per node per message\t%.0f (all traffic of the message phase, framing and AEAD tags included)\n", r.BytesPerNodePerMessage)
	}
	fmt.Fprintf(tw, "messages per node per message\t%.2f\n", r.MessagesPerNodePerMessage)
	writeResources(tw, r.Resources, r.Events)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.PhaseTypes) > 0 {
		fmt.Fprintln(w, "\ntraffic of the message phase by type:")
		tw = newTable(w)
		fmt.Fprintln(tw, "type\tsent\tlost\tbytes\tper node per message")
		perNode := float64(max(r.Nodes, 1) * max(s.Messages, 1))
		for _, t := range r.PhaseTypes {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.1f msgs, %.0f B\n", t.Type, t.Sent, t.Lost, t.Bytes, float64(t.Sent)/perNode, float64(t.Bytes)/perNode)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if r.MassFail != nil {
		fmt.Fprintln(w, "\nmessages after the failure:")
		tw = newTable(w)
		fmt.Fprintln(tw, "message\tsent (s after failure)\tdelivered\tRMR\tlargest hop\tlast delivery (ms)")
		for _, m := range r.PerMessage {
			label := fmt.Sprint(m.Index)
			if m.Index == r.MassFail.HealedMessage {
				label += " (healed)"
			}
			fmt.Fprintf(tw, "%s\t%.1f\t%.3f %%\t%.3f\t%d\t%.0f\n", label, (m.SentAtMs-r.MassFail.KilledAtMs)/1000, 100*m.Ratio, m.RMR, m.MaxHops, m.LastMs)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// Charts returns the result's plots: the share of nodes reached over time
// since each broadcast, and the share of deliveries by hop count.
func (r *BroadcastResult) Charts() []Chart {
	reached := Chart{
		Title:  fmt.Sprintf("%s, %d nodes: share of nodes reached", r.Scenario, r.Nodes),
		XLabel: "time since broadcast (ms)",
		YLabel: "share of expected deliveries",
		YMax:   1,
		Series: []Series{{Name: "all messages", Points: r.Reached}},
	}
	var total int64
	for _, n := range r.Summary.HopHistogram {
		total += n
	}
	var bars, cumulative []Point
	var running int64
	for h, n := range r.Summary.HopHistogram {
		running += n
		if total > 0 {
			bars = append(bars, Point{float64(h), float64(n) / float64(total)})
			cumulative = append(cumulative, Point{float64(h), float64(running) / float64(total)})
		}
	}
	hops := Chart{
		Title:  "deliveries by hop count",
		XLabel: "hops",
		YLabel: "share of deliveries",
		YMax:   1,
		Series: []Series{{Name: "at this hop", Points: bars, Bars: true}, {Name: "cumulative", Points: cumulative}},
	}
	return []Chart{reached, hops}
}
