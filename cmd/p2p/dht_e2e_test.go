package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/p2p-go/p2p"
	"github.com/p2p-go/p2p/kademlia"
	"github.com/p2p-go/p2p/peer"
	"github.com/p2p-go/p2p/transport/tcp"
	"github.com/p2p-go/p2p/wire"
)

// dhtProc is one `p2p dht` process (the binary TestMain builds) with its
// output lines decoded.
type dhtProc struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	logPath string
	exited  chan error
	id      string
	addr    string

	mu     sync.Mutex // guards lines
	lines  []map[string]any
	signal chan struct{}
}

// startDHTProc starts `p2p dht` on loopback with a kernel-chosen port and
// waits until it is ready (joined through join, when given).
func startDHTProc(t *testing.T, name, secret string, join ...string) *dhtProc {
	t.Helper()
	dir := t.TempDir()
	p := &dhtProc{t: t, name: name, logPath: filepath.Join(dir, "stderr.log"), exited: make(chan error, 1), signal: make(chan struct{}, 1)}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"dht", "--listen", "127.0.0.1:0", "--data", filepath.Join(dir, "data"), "--secret", secret, "--timeout", "20s"}
	if len(join) > 0 {
		args = append(args, "--join", strings.Join(join, ","))
	}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Env = cleanEnv()
	p.cmd.Stderr = logFile
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		scanner := bufio.NewScanner(stdout)
		scanner.Buffer(make([]byte, 64*1024), 1<<20)
		for scanner.Scan() {
			var line map[string]any
			if err := json.Unmarshal(scanner.Bytes(), &line); err != nil {
				line = map[string]any{"unparsed": scanner.Text()}
			}
			p.mu.Lock()
			p.lines = append(p.lines, line)
			p.mu.Unlock()
			select {
			case p.signal <- struct{}{}:
			default:
			}
		}
	}()
	go func() {
		<-readDone // Wait closes stdout: read it all first
		p.exited <- p.cmd.Wait()
		logFile.Close()
	}()
	t.Cleanup(func() { p.stop() })
	ready := p.waitLine(0, "ready", func(l map[string]any) bool { return l["event"] == "ready" })
	p.id, _ = ready["id"].(string)
	p.addr, _ = ready["addr"].(string)
	if p.id == "" || !strings.HasPrefix(p.addr, "127.0.0.1:") || strings.HasSuffix(p.addr, ":0") {
		t.Fatalf("%s: ready line %v", name, ready)
	}
	return p
}

// stop ends the process with SIGTERM (a clean exit) and prints its log when
// the test failed.
func (p *dhtProc) stop() {
	if p.cmd.ProcessState == nil {
		_ = p.stdin.Close()
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-p.exited:
			if err != nil {
				p.t.Errorf("%s exited with %v", p.name, err)
			}
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
			p.t.Errorf("%s did not stop on SIGTERM", p.name)
		}
	}
	if p.t.Failed() {
		data, _ := os.ReadFile(p.logPath)
		p.t.Logf("stderr of %s (pid %d):\n%s", p.name, p.cmd.Process.Pid, data)
	}
}

// count returns the number of lines printed so far.
func (p *dhtProc) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lines)
}

// waitLine returns the first line from index from on that matches.
func (p *dhtProc) waitLine(from int, what string, match func(map[string]any) bool) map[string]any {
	p.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		p.mu.Lock()
		for _, l := range p.lines[min(from, len(p.lines)):] {
			if match(l) {
				p.mu.Unlock()
				return l
			}
		}
		p.mu.Unlock()
		select {
		case <-p.signal:
		case err := <-p.exited:
			p.exited <- err
			p.t.Fatalf("%s exited (%v) while waiting for %s", p.name, err, what)
		case <-deadline:
			p.t.Fatalf("%s: timed out waiting for %s", p.name, what)
		}
	}
}

// run sends one command and returns its result line.
func (p *dhtProc) run(command string) map[string]any {
	p.t.Helper()
	from := p.count()
	if _, err := fmt.Fprintln(p.stdin, command); err != nil {
		p.t.Fatalf("%s: write command: %v", p.name, err)
	}
	name, _, _ := strings.Cut(command, " ")
	return p.waitLine(from, "the result of "+name, func(l map[string]any) bool { return l["cmd"] == name })
}

// mustRun is run for a command that must succeed.
func (p *dhtProc) mustRun(command string) map[string]any {
	p.t.Helper()
	res := p.run(command)
	if res["error"] != nil {
		p.t.Fatalf("%s: %.60s: %v", p.name, command, res["error"])
	}
	return res
}

// TestDHTProcesses runs ten `p2p dht` processes on loopback: a record put on
// one is read on the others, its writer's update replaces it, and forged
// updates (signed by another key) are refused by the node asked to store
// them and by every node they are sent to, while Gets still return the
// original. A broadcast reaches every process.
func TestDHTProcesses(t *testing.T) {
	const n = 10
	secretText := p2p.GenerateSecret()
	procs := []*dhtProc{startDHTProc(t, "dht-0", secretText)}
	for i := 1; i < n; i++ {
		// Node i joins through node i/2: most never talk to the first
		// node, and learn of each other only through lookups.
		procs = append(procs, startDHTProc(t, fmt.Sprintf("dht-%d", i), secretText, procs[i/2].addr))
	}

	writer := procs[0]
	put := writer.mustRun(`put config {"version":1}`)
	keyHex, _ := put["key"].(string)
	for _, i := range []int{3, 7, 9} {
		got := procs[i].mustRun("get " + keyHex)
		if v, _ := got["value"].(map[string]any); v["version"] != float64(1) || got["writer"] != writer.id {
			t.Fatalf("dht-%d get: %v", i, got)
		}
	}
	writer.mustRun(`put config {"version":2}`)
	original := procs[5].mustRun("get " + keyHex)
	if v, _ := original["value"].(map[string]any); v["version"] != float64(2) {
		t.Fatalf("after the update, get: %v", original)
	}

	// The forgery: the writer's key, name and a higher version, signed by
	// a key of the test's own.
	writerKey, err := hex.DecodeString(original["writer_key"].(string))
	if err != nil || len(writerKey) != 32 {
		t.Fatalf("writer_key %v: %v", original["writer_key"], err)
	}
	attacker, err := peer.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	forged := kademlia.Record{
		Key: kademlia.MutableKey(writerKey, []byte("config")), Name: []byte("config"),
		Value: []byte(`{"version":666}`), Writer: writerKey, Seq: uint64(original["seq"].(float64)) + 1000,
	}
	forged.Sig = attacker.Sign(forged.SigningBytes())
	if hex.EncodeToString(forged.Key[:]) != keyHex {
		t.Fatalf("forged key %x, want %s", forged.Key, keyHex)
	}
	encoded, err := kademlia.EncodeRecord(forged, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	res := procs[4].run("put-record " + hex.EncodeToString(encoded))
	if msg, _ := res["error"].(string); !strings.Contains(msg, "forged") {
		t.Errorf("put-record of a forged record: %v, want a forgery error", res)
	}
	// The attacker's own key as writer, under the victim's key: the key
	// does not match.
	mismatched := forged
	mismatched.Writer = attacker.Public()
	mismatched.Sig = attacker.Sign(mismatched.SigningBytes())
	encoded2, _ := kademlia.EncodeRecord(mismatched, time.Hour)
	if msg, _ := procs[6].run("put-record " + hex.EncodeToString(encoded2))["error"].(string); !strings.Contains(msg, "does not match") {
		t.Errorf("put-record of a record under another writer's key: %q", msg)
	}

	// A node that skips its own checks: the test sends the forged STORE
	// straight to every process.
	secret, _ := p2p.ParseSecret(secretText)
	var forgedWire kademlia.WireRecord
	if err := wire.UnmarshalValue(encoded, &forgedWire); err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if code := rawDHTStore(t, attacker, secret, p.addr, forgedWire); code != kademlia.StoreForged {
			t.Errorf("%s answered a forged STORE with code %d, want StoreForged", p.name, code)
		}
	}
	for i, p := range procs {
		got := p.mustRun("get " + keyHex)
		if v, _ := got["value"].(map[string]any); v["version"] != float64(2) || got["writer"] != writer.id {
			t.Errorf("dht-%d after the forgeries: %v", i, got)
		}
	}

	// A broadcast reaches every other process once.
	from := make([]int, n)
	for i, p := range procs {
		from[i] = p.count()
	}
	procs[8].mustRun(`send {"hello":"everyone"}`)
	for i, p := range procs {
		if i == 8 {
			continue
		}
		m := p.waitLine(from[i], "the broadcast", func(l map[string]any) bool { return l["event"] == "message" })
		if data, _ := m["data"].(map[string]any); data["hello"] != "everyone" || m["from"] != procs[8].id || m["direct"] != false {
			t.Errorf("dht-%d received %v", i, m)
		}
	}
	closest := procs[2].mustRun("lookup " + procs[7].id)["closest"].([]any)
	if first, _ := closest[0].(map[string]any); first["id"] != procs[7].id {
		t.Errorf("lookup of dht-7's ID: closest %v", closest[0])
	}
}

// rawDHTStore sends one STORE of rec from key straight over the transport
// and returns the answer's code.
func rawDHTStore(t *testing.T, key *peer.Key, secret []byte, addr string, rec kademlia.WireRecord) kademlia.StoreCode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tr, err := tcp.Listen(tcp.Config{ListenAddr: "127.0.0.1:0", Key: key, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	conn, err := tr.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() }) // ends a Recv that waits too long
	defer stop()
	data, err := wire.Marshal(&kademlia.Store{RPC: 77, Record: rec})
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Send(ctx, data); err != nil {
		t.Fatal(err)
	}
	for {
		data, err := conn.Recv()
		if err != nil {
			t.Fatalf("no STORE reply from %s: %v", addr, err)
		}
		msg, err := wire.Unmarshal(data)
		if err != nil {
			t.Fatal(err)
		}
		if reply, ok := msg.(*kademlia.StoreReply); ok && reply.RPC == 77 {
			return reply.Code
		}
	}
}
