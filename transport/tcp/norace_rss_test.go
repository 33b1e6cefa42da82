//go:build !race

package tcp

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2p-go/p2p/internal/testutil"
	"github.com/p2p-go/p2p/peer"
)

// Issue 10, row 6: an insider (a peer holding the cluster secret) opens 300
// connections and sends on each a 1 MiB message short by one byte. Before
// the limits, the agent went from 34 to 360 MB of RSS and 929 goroutines.
//
// The victim is the real agent binary (`p2p agent`, built from ./cmd/p2p)
// in its own process, with its defaults; its memory is the kernel's
// figure, the peak resident set (VmHWM in /proc/PID/status), so that
// everything counts: heap, stacks, buffers and the runtime's own. The
// attacker is this test, with 300 identities of its own (the per-peer cap
// alone would stop a single identity at 4 connections).
//
//	go test -run TestInsiderIncompleteFramesKeepAgentUnder100MB -v ./transport/tcp/
func TestInsiderIncompleteFramesKeepAgentUnder100MB(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc to read the agent's resident memory")
	}
	const (
		connections = 300
		frameSize   = 1 << 20
		limitMB     = 100
	)
	dir := t.TempDir()
	binary, err := testutil.BuildCommand(dir, "p2p", "github.com/p2p-go/p2p/cmd/p2p")
	if err != nil {
		t.Fatal(err)
	}
	sec := secret(5)
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(base64.StdEncoding.EncodeToString(sec)), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "agent.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "data")
	cmd := exec.Command(binary, "agent", "--data", dataDir, "--listen", "127.0.0.1:0", "--api", "127.0.0.1:0", "--secret-file", secretFile)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logFile.Close(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			t.Logf("agent log:\n%s", data)
		}
	})
	var state struct {
		Addr string `json:"addr"`
		API  string `json:"api"`
		PID  int    `json:"pid"`
	}
	testutil.Eventually(t, 10*time.Second, "the agent to start", func() bool {
		data, err := os.ReadFile(filepath.Join(dataDir, "agent.json"))
		return err == nil && json.Unmarshal(data, &state) == nil && state.PID == cmd.Process.Pid
	})
	status := func(field string) int {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", state.PID))
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(data)) {
			if rest, ok := strings.CutPrefix(line, field+":"); ok {
				kb, _ := strconv.Atoi(strings.Fields(rest)[0])
				return kb / 1024
			}
		}
		t.Fatalf("no %s in /proc/%d/status", field, state.PID)
		return 0
	}
	metric := func(name string) float64 {
		resp, err := http.Get("http://" + state.API + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		total := 0.0
		scanner := bufio.NewScanner(resp.Body)
		for scanner.Scan() {
			line := scanner.Text()
			if strings.HasPrefix(line, name) {
				fields := strings.Fields(line)
				v, _ := strconv.ParseFloat(fields[len(fields)-1], 64)
				total += v
			}
		}
		return total
	}
	baseline := status("VmRSS")

	var (
		wg          sync.WaitGroup
		mu          sync.Mutex
		raws        []*insiderConn
		handshakes  int
		writeFailed int
	)
	t.Cleanup(func() {
		for _, raw := range raws {
			raw.Close()
		}
	})
	// Sixteen handshakes at a time, each retried for up to 10 s: the
	// attacker gets every connection the agent's limits let it have.
	handshakeSlots := make(chan struct{}, 16)
	for range connections {
		wg.Go(func() {
			var raw *insiderConn
			for retry := time.Now().Add(10 * time.Second); raw == nil && time.Now().Before(retry); {
				handshakeSlots <- struct{}{}
				raw, _ = insiderHandshake(sec, state.Addr)
				<-handshakeSlots
			}
			if raw == nil {
				return
			}
			mu.Lock()
			raws = append(raws, raw)
			handshakes++
			mu.Unlock()
			c := raw.conn
			c.mu.Lock()
			frame, err := appendMessage(nil, c.sendCipher, make([]byte, frameSize))
			c.mu.Unlock()
			if err != nil {
				t.Error(err)
				return
			}
			c.raw.SetWriteDeadline(time.Now().Add(20 * time.Second))
			if _, err := c.raw.Write(frame[:len(frame)-1]); err != nil {
				mu.Lock()
				writeFailed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// Wait until the agent has read what it will read: its socket byte
	// counter stops moving.
	var last float64 = -1
	deadline := time.Now().Add(60 * time.Second)
	for {
		now := metric("p2p_socket_bytes_received_total")
		if now == last || time.Now().After(deadline) {
			break
		}
		last = now
		time.Sleep(time.Second)
	}
	peak := status("VmHWM")
	t.Logf("agent RSS: %d MB before, peak %d MB, %d MB now; %d of %d insider handshakes completed, %d writes cut; agent read %.0f MB; over-limit connections %.0f; goroutines %.0f",
		baseline, peak, status("VmRSS"), handshakes, connections, writeFailed, last/(1<<20),
		metric("p2p_connections_over_limit_total"), metric("go_goroutines"))
	if peak >= limitMB {
		t.Fatalf("the agent's peak RSS is %d MB, want under %d MB", peak, limitMB)
	}
	// The agent still serves a member once the attack's connections are
	// cut (FrameTimeout, 20 s) or trimmed as idle (10 s).
	var lastErr error
	testutil.EventuallyWhy(t, 60*time.Second, "a member's handshake after the attack", func() (bool, string) {
		raw, err := insiderHandshake(sec, state.Addr)
		if err != nil {
			lastErr = err
			return false, lastErr.Error()
		}
		raw.Close()
		return true, ""
	})
	t.Logf("a member completed a handshake; over-limit connections now %.0f, trimmed %.0f",
		metric("p2p_connections_over_limit_total"), metric("p2p_connections_trimmed_total"))
}

// insiderConn is a connection made with the cluster secret and a fresh
// identity, from a transport of its own.
type insiderConn struct {
	conn *Conn
	tr   *Transport
}

func (c *insiderConn) Close() {
	c.conn.Close()
	c.tr.Close()
}

func insiderHandshake(sec []byte, addr string) (*insiderConn, error) {
	key, err := peer.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	tr, err := Listen(Config{ListenAddr: "127.0.0.1:0", Key: key, Secret: sec})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := tr.Dial(ctx, addr)
	if err != nil {
		tr.Close()
		return nil, err
	}
	return &insiderConn{conn: conn.(*Conn), tr: tr}, nil
}
