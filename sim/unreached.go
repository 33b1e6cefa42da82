package sim

import (
	"slices"

	"github.com/p2p-go/p2p/hyparview"
	"github.com/p2p-go/p2p/peer"
)

// maxUnreachedReported bounds the nodes a result describes.
const maxUnreachedReported = 10

// UnreachedNode describes a live node that missed broadcasts, with the
// overlay state that explains it: its views, its member list, and how
// many live nodes link to it.
type UnreachedNode struct {
	Index int    `json:"index"`
	ID    string `json:"id"`
	// Rejoined is set for a node that joined during the churn.
	Rejoined bool `json:"rejoined,omitempty"`
	// Missed is the number of broadcasts it did not deliver.
	Missed int `json:"missed"`
	// Active and Passive are the sizes of its HyParView views, Members
	// the size of its member list (-1 when the core has none).
	Active  int `json:"active"`
	Passive int `json:"passive"`
	Members int `json:"members"`
	// InActiveViews and InPassiveViews count the live nodes whose views
	// hold it.
	InActiveViews  int `json:"in_active_views"`
	InPassiveViews int `json:"in_passive_views"`
}

// describeUnreached returns, for up to maxUnreachedReported live nodes that
// missed broadcasts, their overlay state, and the number of such nodes.
func (run *broadcastRun) describeUnreached() ([]UnreachedNode, int) {
	s := run.sim
	nodes, missed := run.track.unreached(s.Alive)
	if len(nodes) == 0 {
		return nil, 0
	}
	type hyParViewed interface{ HyParView() *hyparview.Core }
	type membered interface{ Members() []peer.Info }
	// The nodes that missed the most first.
	slices.SortStableFunc(nodes, func(a, b int) int { return missed[b] - missed[a] })
	report := nodes[:min(len(nodes), maxUnreachedReported)]
	out := make([]UnreachedNode, len(report))
	wanted := map[peer.ID]int{}
	for k, i := range report {
		u := UnreachedNode{Index: i, ID: s.Info(i).ID.String(), Rejoined: i >= run.cfg.Nodes, Missed: missed[i], Members: -1}
		if hv, ok := s.Core(i).(hyParViewed); ok {
			u.Active, u.Passive = len(hv.HyParView().ActiveView()), len(hv.HyParView().PassiveView())
		}
		if m, ok := s.Core(i).(membered); ok {
			u.Members = len(m.Members())
		}
		out[k] = u
		wanted[s.Info(i).ID] = k
	}
	for _, j := range s.LiveNodes() {
		hv, ok := s.Core(j).(hyParViewed)
		if !ok {
			continue
		}
		for _, p := range hv.HyParView().ActiveView() {
			if k, ok := wanted[p.ID]; ok {
				out[k].InActiveViews++
			}
		}
		for _, p := range hv.HyParView().PassiveView() {
			if k, ok := wanted[p.ID]; ok {
				out[k].InPassiveViews++
			}
		}
	}
	return out, len(nodes)
}
