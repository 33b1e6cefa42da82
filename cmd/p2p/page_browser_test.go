package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/p2p-go/p2p/internal/testutil"
)

// findChromium returns the path of a Chromium-family browser, or "".
// $P2P_CHROMIUM names one explicitly.
func findChromium() string {
	if path := os.Getenv("P2P_CHROMIUM"); path != "" {
		return path
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile, closed at the
// end of the test. The flags suit a container run as root without network:
// no sandbox, no GPU, and none of the browser's own background traffic.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := findChromium()
	if path == "" {
		t.Skip("no Chromium found (install Debian's chromium, or set P2P_CHROMIUM): the cluster page's browser test does not run")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 860),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	// Start the browser now, so that a failure to launch is reported here.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return ctx
}

// pageEval evaluates a JavaScript expression on the page, within a bound.
func pageEval[T any](t *testing.T, ctx context.Context, expr string) (T, error) {
	t.Helper()
	callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(callCtx, chromedp.Evaluate[T](expr))
}

// waitPage polls a JavaScript expression returning a string until match
// accepts it.
func waitPage(t *testing.T, ctx context.Context, timeout time.Duration, what, expr string, match func(string) bool) string {
	t.Helper()
	var got string
	testutil.EventuallyWhy(t, timeout, what, func() (bool, string) {
		var err error
		got, err = pageEval[string](t, ctx, expr)
		return err == nil && match(got), fmt.Sprintf("the page shows %q (%v)", got, err)
	})
	return got
}

// The cluster page, in a real browser, against three agent processes: it
// lists the three members, shows a key put through the CLI without a
// reload, and turns a killed agent "failed".
func TestClusterPageInBrowser(t *testing.T) {
	browser := newBrowser(t)
	dir := t.TempDir()
	a := startAgentProc(t, "a", filepath.Join(dir, "a"), nil, "--name", "a", "--tag", "role=seed")
	b := startAgentProc(t, "b", filepath.Join(dir, "b"), nil, "--name", "b", "--tag", "role=web", "--join", a.state.Addr)
	c := startAgentProc(t, "c", filepath.Join(dir, "c"), nil, "--name", "c", "--tag", "role=web", "--join", a.state.Addr)
	testutil.Eventually(t, 30*time.Second, "a lists 3 named members", func() bool {
		named := 0
		for _, m := range membersOf(t, a.state.API) {
			if m.Name != "" {
				named++
			}
		}
		return named == 3
	})

	navCtx, cancel := context.WithTimeout(browser, 20*time.Second)
	err := chromedp.Do(navCtx, chromedp.Navigate("http://"+a.state.API+"/"), chromedp.WaitVisible(chromedp.ID("members")))
	cancel()
	if err != nil {
		t.Fatalf("open the page: %v", err)
	}
	const membersExpr = `[...document.querySelectorAll("#members tbody tr")].map(r => r.dataset.name + ":" + r.dataset.state).sort().join(",")`
	waitPage(t, browser, 20*time.Second, "the page lists a, b and c alive", membersExpr, func(s string) bool {
		return s == "a:alive,b:alive,c:alive"
	})

	// A key put through the CLI appears without a reload: a mark set on
	// the window survives only if the page was not loaded again.
	if _, err := pageEval[int](t, browser, `window.testMark = 42`); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, "kv", "put", "config/db", "postgres://db1:5432", "--api", b.state.API)
	waitPage(t, browser, 20*time.Second, "config/db on the page", `(document.querySelector('#store tr[data-key="config/db"]') || {}).textContent || ""`,
		func(s string) bool { return strings.Contains(s, "postgres://db1:5432") && strings.Contains(s, "b") })
	if mark, err := pageEval[int](t, browser, `window.testMark || 0`); err != nil || mark != 42 {
		t.Fatalf("the page was reloaded (mark %d, %v)", mark, err)
	}
	// The store converges: each member reports the four keys (three names
	// and config/db) and one digest.
	waitPage(t, browser, 20*time.Second, "four keys on every member", `[...document.querySelectorAll("#members tbody tr td.num")].map(td => td.textContent).join(",")`,
		func(s string) bool { return s == "4,4,4" })
	waitPage(t, browser, 20*time.Second, "converged banner", `document.getElementById("converged").textContent`,
		func(s string) bool { return strings.HasPrefix(s, "converged: the 3 live members") })
	// The links graph has an edge, and a broadcast reaches the live feed.
	waitPage(t, browser, 20*time.Second, "links in the graph", `String(document.querySelectorAll("#graph line").length)`,
		func(s string) bool { return s != "0" })
	mustCLI(t, "send", `{"deploy":"v2"}`, "--api", b.state.API)
	waitPage(t, browser, 20*time.Second, "the message in the live feed", `document.getElementById("feed").textContent`,
		func(s string) bool {
			return strings.Contains(s, `message from b`) && strings.Contains(s, `{"deploy":"v2"}`)
		})

	if path := os.Getenv("P2P_PAGE_SCREENSHOT"); path != "" {
		shotCtx, cancel := context.WithTimeout(browser, 20*time.Second)
		png, err := chromedp.Run(shotCtx, chromedp.CaptureScreenshot())
		cancel()
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot written to %s (%d bytes)", path, len(png))
	}

	// A killed agent turns "failed".
	if err := c.signal(t, syscall.SIGKILL); err == nil {
		t.Fatal("c exited cleanly on SIGKILL")
	}
	waitPage(t, browser, 30*time.Second, "c failed on the page", membersExpr, func(s string) bool {
		return s == "a:alive,b:alive,c:failed"
	})
	for _, p := range []*agentProc{b, a} {
		if err := p.signal(t, syscall.SIGTERM); err != nil {
			t.Fatalf("agent %s: %v", p.name, err)
		}
	}
}

// With --api-token, the page asks for the token once, keeps it for the tab
// (a reload does not ask again), and shows the cluster with it.
func TestClusterPageAsksForTheTokenOnce(t *testing.T) {
	browser := newBrowser(t)
	a := startAgentProc(t, "a", filepath.Join(t.TempDir(), "a"), []string{"P2P_API_TOKEN=s3cret"}, "--name", "a")
	navCtx, cancel := context.WithTimeout(browser, 20*time.Second)
	err := chromedp.Do(navCtx, chromedp.Navigate("http://"+a.state.API+"/"), chromedp.WaitVisible(chromedp.ID("token")))
	cancel()
	if err != nil {
		t.Fatalf("the page does not ask for the token: %v", err)
	}
	formCtx, cancel := context.WithTimeout(browser, 20*time.Second)
	err = chromedp.Do(formCtx, chromedp.SendKeys(chromedp.ID("token"), "s3cret"), chromedp.Click(chromedp.CSS("#token-form button")))
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	const membersExpr = `[...document.querySelectorAll("#members tbody tr")].map(r => r.dataset.name + ":" + r.dataset.state).join(",")`
	waitPage(t, browser, 20*time.Second, "the member list with the token", membersExpr, func(s string) bool { return s == "a:alive" })
	reloadCtx, cancel := context.WithTimeout(browser, 20*time.Second)
	err = chromedp.Do(reloadCtx, chromedp.Reload())
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	waitPage(t, browser, 20*time.Second, "the member list after a reload", membersExpr, func(s string) bool { return s == "a:alive" })
	if hidden, err := pageEval[bool](t, browser, `document.getElementById("token-form").hidden`); err != nil || !hidden {
		t.Fatalf("the token form shows again after a reload (hidden %v, %v)", hidden, err)
	}
	if err := a.signal(t, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
}
