package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzConfigFile checks that no configuration file makes the parser panic
// and that what it accepts validates or fails with an error.
func FuzzConfigFile(f *testing.F) {
	f.Add([]byte(`{"listen": "127.0.0.1:0", "join": ["a:1", "b:2"], "tag": "x=1", "handler-concurrency": 2}`))
	f.Add([]byte(`{"handler": ["kv:config/=echo"], "sync": "k=/tmp/f", "log-level": "debug"}`))
	f.Add([]byte(`{"name": true}`))
	f.Add([]byte(`{"join": [1]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{} x`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Config
		if err := applyFileData(&c, "fuzz.json", data); err != nil {
			return
		}
		_, _ = c.withDefaults()
	})
}

// FuzzParseHandler checks the handler syntax: accepted specifications
// have a known kind and a command, and never panic.
func FuzzParseHandler(f *testing.F) {
	for _, s := range []string{"msg=cat", "msg:direct=x", "member:join=y", "kv:config/=z", "sync:config/=w", "kv=", "x", "kv:a=b=c", "=", "member:=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		h, err := ParseHandler(spec)
		if err != nil {
			return
		}
		if h.Command == "" || (h.Kind != "msg" && h.Kind != "member" && h.Kind != "kv" && h.Kind != "sync") {
			t.Fatalf("ParseHandler(%q) accepted %+v", spec, h)
		}
		_ = h.matches(kvEvent(Record{Key: spec}))
	})
}

// FuzzParseSyncAndTags checks the KEY=PATH and key=value parsers.
func FuzzParseSyncAndTags(f *testing.F) {
	for _, s := range []string{"config/app=/etc/app", "=x", "k=", "a\x00=b", "role=web", strings.Repeat("k", 600) + "=/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		if s, err := ParseSync(spec); err == nil && (s.Key == "" || s.Path == "" || len(s.Key) > 512) {
			t.Fatalf("ParseSync(%q) accepted %+v", spec, s)
		}
		if tags, err := ParseTags([]string{spec}); err == nil {
			for k := range tags {
				if k == "" {
					t.Fatalf("ParseTags(%q) accepted an empty key", spec)
				}
			}
		}
	})
}

// FuzzEventStream feeds arbitrary bytes to the client's decoder of the
// agent's event streams: it must not panic, and each event it yields is
// what the data lines said.
func FuzzEventStream(f *testing.F) {
	f.Add([]byte(": stream open\n\nevent: message\ndata: {\"type\":\"message\",\"data\":{\"a\":1}}\n\n"))
	f.Add([]byte("event: put\ndata: {\"type\":\"put\",\"record\":{\"key\":\"k\",\"value\":\"dg==\"}}\n\nevent: synced\ndata: {\"type\":\"synced\"}\n\n"))
	f.Add([]byte("data: a\ndata: b\n\ndata:\n\n"))
	f.Add([]byte("data: {\"type\":\"error\",\"error\":\"too slow\"}"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		stop := errors.New("stop")
		n := 0
		err := readSSE(bytes.NewReader(stream), func(data []byte) error {
			n++
			var ev Event
			_ = json.Unmarshal(data, &ev)
			var wev WatchEvent
			_ = json.Unmarshal(data, &wev)
			if n > len(stream) {
				return stop
			}
			return nil
		})
		if errors.Is(err, stop) {
			t.Fatalf("more events (%d) than bytes (%d)", n, len(stream))
		}
	})
}

// FuzzAgentMessage checks the decoder of the agent's own messages (cluster
// view questions and answers, sent by peers): no input panics, and what
// clampState keeps is bounded and names the member asked.
func FuzzAgentMessage(f *testing.F) {
	f.Add([]byte(`{"_p2p_agent":{"op":"state?","req":"0011223344556677"}}`))
	f.Add([]byte(`{"_p2p_agent":{"op":"state","req":"00","state":{"id":"x","neighbors":["a","b"],"digest":"ff","keys":-3,"counters":{"delivered":1}}}}`))
	f.Add([]byte(`{"_p2p_agent":null}`))
	f.Add([]byte(`{"deploy":"v2"}`))
	f.Add([]byte(`"_p2p_agent"`))
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, ok := decodeAgentMessage(data)
		if !ok {
			return
		}
		if msg.State == nil {
			return
		}
		st := clampState(*msg.State, "asked")
		if st.ID != "asked" || st.Error != "" || len(st.Neighbors) > clusterMaxNeighbors || len(st.Digest) > 64 || st.Keys < 0 || st.Tombstones < 0 {
			t.Fatalf("clampState kept %+v", st)
		}
	})
}
