package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestFlagsWinOverEnvironmentOverFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "agent.json")
	if err := os.WriteFile(file, []byte(`{
		"data": "/from/file", "listen": "127.0.0.1:7000", "name": "file-name",
		"join": ["10.0.0.1:6966", "10.0.0.2:6966"], "tag": "a=1,b=2",
		"handler": ["kv:config/=echo file"], "handler-concurrency": 8, "log-level": "debug"
	}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(Sources{
		File:  file,
		Env:   envMap(map[string]string{"P2P_LISTEN": "127.0.0.1:7001", "P2P_NAME": "env-name", "P2P_HANDLERS": "msg=echo one,two\nmember=echo m"}),
		Flags: map[string][]string{"name": {"flag-name"}, "join": {"10.0.0.9:6966,10.0.0.8:6966", "10.0.0.7:6966"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		DataDir: "/from/file", Listen: "127.0.0.1:7001", Name: "flag-name",
		Join:               []string{"10.0.0.9:6966", "10.0.0.8:6966", "10.0.0.7:6966"},
		Tags:               map[string]string{"a": "1", "b": "2"},
		Handlers:           []string{"msg=echo one,two", "member=echo m"},
		HandlerConcurrency: 8, LogLevel: "debug",
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("LoadConfig:\n got %+v\nwant %+v", cfg, want)
	}
}

func TestLoadConfigRejects(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		name string
		src  Sources
		want string
	}{
		{"unknown file key", Sources{File: write("a.json", `{"listne": "x"}`)}, `unknown setting "listne"`},
		{"not an object", Sources{File: write("b.json", `["x"]`)}, "not a JSON object"},
		{"trailing data", Sources{File: write("c.json", `{} {}`)}, "data after"},
		{"list for single", Sources{File: write("d.json", `{"name": ["a"]}`)}, `setting "name"`},
		{"missing file", Sources{File: filepath.Join(dir, "none.json")}, "config file"},
		{"bad tag", Sources{Flags: map[string][]string{"tag": {"novalue"}}}, "--tag"},
		{"bad concurrency", Sources{Env: envMap(map[string]string{"P2P_HANDLER_CONCURRENCY": "many"})}, "P2P_HANDLER_CONCURRENCY"},
		{"bad timeout", Sources{Flags: map[string][]string{"handler-timeout": {"soon"}}}, "handler-timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(tt.src)
			// Operators set flags and environment variables, not Go fields.
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "Config.") {
				t.Fatalf("LoadConfig error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestConfigValidationNamesTheField(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"token off loopback", Config{API: "0.0.0.0:6967"}, "--api-token ($P2P_API_TOKEN)"},
		{"token on a host name", Config{API: "agent.example:6967"}, "--api-token"},
		{"log level", Config{LogLevel: "loud"}, "--log-level ($P2P_LOG_LEVEL)"},
		{"log format", Config{LogFormat: "xml"}, "--log-format ($P2P_LOG_FORMAT)"},
		{"handler", Config{Handlers: []string{"msgs=echo"}}, "handler"},
		{"sync", Config{Sync: []string{"novalue"}}, "sync"},
		{"sync twice to one file", Config{Sync: []string{"a=/tmp/f", "b=/tmp/f"}}, "already synced"},
		{"negative timeout", Config{HandlerTimeout: -time.Second}, "--handler-timeout ($P2P_HANDLER_TIMEOUT)"},
		// The member record's bounds, checked here so that the library's
		// error (which names Config.Name) never reaches an operator.
		{"advertise without a port", Config{Advertise: "nonsense"}, `--advertise ($P2P_ADVERTISE): "nonsense": want host:port`},
		{"long advertise", Config{Advertise: strings.Repeat("x", 300) + ":1"}, "--advertise ($P2P_ADVERTISE)"},
		{"long name", Config{Name: strings.Repeat("n", 129)}, "--name ($P2P_NAME) is 129 bytes long: at most 128"},
		{"many tags", Config{Tags: manyTags(33)}, "--tag ($P2P_TAGS): 33 tags, at most 32"},
		{"long tag value", Config{Tags: map[string]string{"k": strings.Repeat("v", 513)}}, "--tag ($P2P_TAGS)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.cfg.withDefaults()
			// Operators set flags and environment variables, not Go fields.
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "Config.") {
				t.Fatalf("withDefaults error = %v, want one containing %q", err, tt.want)
			}
		})
	}
	for _, ok := range []Config{{API: "0.0.0.0:6967", APIToken: "t"}, {API: "[::1]:6967"}, {API: "localhost:1"}, {API: "unix:/tmp/x.sock"}} {
		if _, err := ok.withDefaults(); err != nil {
			t.Errorf("withDefaults(%+v): %v", ok, err)
		}
	}
}

func TestParseHandler(t *testing.T) {
	tests := []struct {
		spec    string
		want    Handler
		wantErr bool
	}{
		{spec: "msg=/bin/cat", want: Handler{Kind: "msg", Command: "/bin/cat"}},
		{spec: "msg:direct=cmd a=b", want: Handler{Kind: "msg", Sub: "direct", Command: "cmd a=b"}},
		{spec: "member:fail=alert", want: Handler{Kind: "member", Sub: "fail", Command: "alert"}},
		{spec: "kv=log", want: Handler{Kind: "kv", Command: "log"}},
		{spec: "kv:config/=reload.sh", want: Handler{Kind: "kv", Prefix: "config/", Command: "reload.sh"}},
		{spec: "msg:other=x", wantErr: true},
		{spec: "member:up=x", wantErr: true},
		{spec: "kv:config/", wantErr: true},
		{spec: "kv=", wantErr: true},
		{spec: "timer=x", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseHandler(tt.spec)
		if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
			t.Errorf("ParseHandler(%q) = %+v, %v; want %+v, error %t", tt.spec, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestHandlerFilters(t *testing.T) {
	msg := messageEvent("id", "addr", true, 0, nil)
	bcast := messageEvent("id", "addr", false, 2, nil)
	join := memberEvent("join", "id", "addr", nil)
	put := kvEvent(Record{Key: "config/db"})
	tests := []struct {
		spec string
		ev   handlerEvent
		want bool
	}{
		{"msg=x", msg, true}, {"msg=x", bcast, true}, {"msg:direct=x", bcast, false}, {"msg:broadcast=x", bcast, true},
		{"member=x", join, true}, {"member:leave=x", join, false}, {"msg=x", join, false},
		{"kv=x", put, true}, {"kv:config/=x", put, true}, {"kv:other/=x", put, false}, {"member=x", put, false},
	}
	for _, tt := range tests {
		h, err := ParseHandler(tt.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := h.matches(tt.ev); got != tt.want {
			t.Errorf("%s matches %s %s = %t, want %t", tt.spec, tt.ev.name, tt.ev.key, got, tt.want)
		}
	}
}

func TestParseSyncAndTags(t *testing.T) {
	if s, err := ParseSync("config/app=/etc/app.json"); err != nil || s != (SyncSpec{Key: "config/app", Path: "/etc/app.json"}) {
		t.Errorf("ParseSync = %+v, %v", s, err)
	}
	for _, bad := range []string{"", "key", "=path", "key=", "a\x00b=/x"} {
		if _, err := ParseSync(bad); err == nil {
			t.Errorf("ParseSync(%q) accepted", bad)
		}
	}
	tags, err := ParseTags([]string{"role=web", "dc = eu-1", "empty="})
	if err != nil || !reflect.DeepEqual(tags, map[string]string{"role": "web", "dc": "eu-1", "empty": ""}) {
		t.Errorf("ParseTags = %v, %v", tags, err)
	}
	if _, err := ParseTags([]string{"=x"}); err == nil {
		t.Error("ParseTags accepted an empty key")
	}
}

// manyTags returns n distinct tags.
func manyTags(n int) map[string]string {
	tags := make(map[string]string, n)
	for i := range n {
		tags[fmt.Sprint("k", i)] = "v"
	}
	return tags
}
