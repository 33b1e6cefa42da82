package agent

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/p2p-go/p2p/internal/testutil"
)

// gatherP2P returns the p2p_* families of the agent's registry by name.
func gatherP2P(t *testing.T, a *Agent) map[string]*dto.MetricFamily {
	t.Helper()
	families, err := a.metrics.registry.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), "p2p_") {
			out[f.GetName()] = f
		}
	}
	return out
}

// TestMetricsMatchTheAPIDocs checks that every p2p_* metric the agent
// exports is listed in docs/api.md with its type, and that every metric the
// docs list is exported, so that the documentation stays right.
func TestMetricsMatchTheAPIDocs(t *testing.T) {
	doc, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	// Rows of the metrics table: | `name`, `name` | type | meaning |
	row := regexp.MustCompile("(?m)^\\| (`p2p_[^|]*) \\| (\\w+) \\|")
	name := regexp.MustCompile("`(p2p_\\w+)(\\{\\w+\\})?`")
	documented := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		for _, n := range name.FindAllStringSubmatch(m[1], -1) {
			documented[n[1]] = m[2]
		}
	}
	if len(documented) == 0 {
		t.Fatal("no metrics table found in docs/api.md")
	}
	a := startAgent(t, testConfig(t, "a"))
	exported := gatherP2P(t, a)
	for n, f := range exported {
		want := strings.ToLower(f.GetType().String())
		if got, ok := documented[n]; !ok {
			t.Errorf("metric %s (%s) is not in docs/api.md", n, want)
		} else if got != want {
			t.Errorf("docs/api.md says %s is a %s, the agent exports a %s", n, got, want)
		}
	}
	for n := range documented {
		if _, ok := exported[n]; !ok {
			t.Errorf("docs/api.md lists %s, which the agent does not export", n)
		}
	}
}

// TestMetricsPassPromlint runs the Prometheus linter over the agent's
// registry (names, units, help texts).
func TestMetricsPassPromlint(t *testing.T) {
	a := startAgent(t, testConfig(t, "a"))
	families, err := a.metrics.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(families).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// TestMetricsRegistriesArePrivate checks that each agent has its own
// registry: two agents in one process report their own node, and nothing
// is registered in the global registry.
func TestMetricsRegistriesArePrivate(t *testing.T) {
	a, b := joinedPair(t, testConfig(t, "a"), testConfig(t, "b"))
	if _, err := client(t, b, "").Put(context.Background(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	propagationCount := func(x *Agent) uint64 {
		f := gatherP2P(t, x)["p2p_kv_propagation_seconds"]
		if f == nil || len(f.GetMetric()) != 1 {
			t.Fatalf("p2p_kv_propagation_seconds missing from %s's registry", x.cfg.Name)
		}
		return f.GetMetric()[0].GetHistogram().GetSampleCount()
	}
	gauge := func(x *Agent, name string) float64 {
		f := gatherP2P(t, x)[name]
		if f == nil || len(f.GetMetric()) != 1 {
			t.Fatalf("%s missing from %s's registry", name, x.cfg.Name)
		}
		return f.GetMetric()[0].GetGauge().GetValue()
	}
	// Each store ends with both node infos and k; a applied two remote
	// writes (b's node info and k), b one (a's node info): its own writes
	// are not propagation.
	testutil.Eventually(t, 10*time.Second, "both stores hold 3 keys", func() bool {
		return gauge(a, "p2p_store_keys") == 3 && gauge(b, "p2p_store_keys") == 3
	})
	testutil.Eventually(t, 10*time.Second, "a's and b's propagation histograms count the remote writes", func() bool {
		return propagationCount(a) == 2 && propagationCount(b) == 1
	})
	for _, x := range []*Agent{a, b} {
		if got := gauge(x, "p2p_members"); got != 2 {
			t.Errorf("%s's p2p_members = %v, want 2", x.cfg.Name, got)
		}
	}
	global, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range global {
		if strings.HasPrefix(f.GetName(), "p2p_") {
			t.Errorf("%s is in the global registry", f.GetName())
		}
	}
}
