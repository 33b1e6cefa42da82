package agent

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/p2p-go/p2p/internal/testutil"
)

// The cluster view gathers every member's own report over the network: its
// links, its digest and its counters; a member that leaves shows as left.
func TestClusterViewGathersEveryMembersState(t *testing.T) {
	a, b := joinedPair(t, testConfig(t, "a"), testConfig(t, "b"))
	cfgC := testConfig(t, "c")
	cfgC.Join = []string{a.Node().Addr()}
	c := startAgent(t, cfgC)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := a.Node().Store().Put(ctx, "config/x", []byte("1")); err != nil {
		t.Fatal(err)
	}
	var view ClusterView
	testutil.Eventually(t, 20*time.Second, "a converged view of three members with their links", func() bool {
		var err error
		view, err = client(t, a, "").Cluster(ctx)
		if err != nil || len(view.Members) != 3 || !view.Converged {
			return false
		}
		for _, m := range view.Members {
			st, ok := view.Nodes[m.ID]
			if m.State != StateAlive || m.Name == "" || !ok || st.Error != "" || len(st.Neighbors) == 0 || st.Keys < 4 {
				return false
			}
		}
		return true
	})
	// Each member reports its own links: b's answer lists b's neighbours,
	// which b's own API confirms.
	bID := b.Node().ID().String()
	infoB, err := b.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range infoB.Neighbors {
		if !strings.Contains(strings.Join(view.Nodes[bID].Neighbors, " "), n) {
			t.Errorf("view of b's links %v lacks %s (b's own info: %v)", view.Nodes[bID].Neighbors, n, infoB.Neighbors)
		}
	}
	// The questions never reach the event stream or the handlers.
	if a.stateRefusals() != 0 {
		t.Errorf("a refused %d state messages", a.stateRefusals())
	}

	cID := c.Node().ID().String()
	c.Close()
	testutil.Eventually(t, 20*time.Second, "c shown as left", func() bool {
		view, err := client(t, a, "").Cluster(ctx)
		if err != nil {
			return false
		}
		for _, m := range view.Members {
			if m.ID == cID {
				return m.State == StateLeft && m.Name == "c"
			}
		}
		return false
	})
}

func TestClusterPageServedWithoutTokenAndAPIStillGuarded(t *testing.T) {
	cfg := testConfig(t, "a")
	cfg.APIToken = "s3cret"
	a := startAgent(t, cfg)
	get := func(path string) (int, string, string) {
		resp, err := http.Get("http://" + a.APIAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
	}
	defer http.DefaultClient.CloseIdleConnections()
	if status, ctype, body := get("/"); status != 200 || !strings.HasPrefix(ctype, "text/html") || !strings.Contains(body, "/ui/app.js") {
		t.Fatalf("GET / = %d %s", status, ctype)
	}
	if status, ctype, body := get("/ui/app.js"); status != 200 || !strings.Contains(ctype, "javascript") || !strings.Contains(body, "/v1/cluster") {
		t.Fatalf("GET /ui/app.js = %d %s", status, ctype)
	}
	for _, path := range []string{"/v1/cluster", "/v1/info"} {
		if status, _, _ := get(path); status != http.StatusUnauthorized {
			t.Fatalf("GET %s without token = %d, want 401", path, status)
		}
	}
	// Nothing on the page is fetched from another origin.
	for _, f := range []string{"ui/index.html", "ui/app.js", "ui/style.css"} {
		data, err := uiFiles.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "http://") && !strings.Contains(f, "app.js") || strings.Contains(string(data), "https://") {
			t.Errorf("%s refers to another origin", f)
		}
	}
}
