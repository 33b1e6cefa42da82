package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/p2p-go/p2p"
	"github.com/p2p-go/p2p/gossip"
	"github.com/p2p-go/p2p/peer"
)

// Defaults for Config fields left zero.
const (
	// DefaultAPIAddr is where the HTTP API listens: loopback only, so the
	// API needs no token by default.
	DefaultAPIAddr = "127.0.0.1:6967"
	// DefaultHandlerConcurrency bounds the handler commands running at once.
	DefaultHandlerConcurrency = 4
	// DefaultHandlerTimeout bounds one handler command; it is killed after.
	DefaultHandlerTimeout = time.Minute
	// DefaultHandlerQueueLen is the number of events waiting for a handler
	// slot; events beyond it are dropped, counted and logged.
	DefaultHandlerQueueLen = 256
	// MaxRequestBody bounds the body of API requests other than kv writes
	// (those are bounded by kv.MaxValueLen).
	MaxRequestBody = 1 << 20
)

// Config configures an agent. Zero fields take the documented defaults. The
// same settings come from a configuration file, environment variables and
// command-line flags: see Settings and LoadConfig.
type Config struct {
	// DataDir holds the node key, the store and agent.json (default
	// p2p.DefaultDataDir).
	DataDir string
	// Listen is the overlay's TCP address (default p2p.DefaultListenAddr).
	Listen string
	// Advertise is the address other nodes dial (default: Listen's actual
	// address).
	Advertise string
	// Join lists addresses of nodes already in the network; empty starts a
	// new network. The overlay retries them every second until one answers.
	Join []string
	// Secret is the cluster secret printed by `p2p keygen`.
	Secret string
	// SecretFile is a file holding the secret (used when Secret is empty).
	SecretFile string
	// Name is the node's human name, published with its tags (default: the
	// host name).
	Name string
	// Tags are key=value labels published with the name.
	Tags map[string]string
	// API is the HTTP API's address, "host:port" or "unix:/path/to.sock"
	// (default DefaultAPIAddr).
	API string
	// APIToken, when set, is required as "Authorization: Bearer <token>" on
	// every request. It must be set when API is not a loopback address.
	APIToken string
	// APITokenFile is a file holding the API token (used when APIToken is
	// empty), so that the token does not show in the process list.
	APITokenFile string
	// LogLevel is debug, info (default), warn or error.
	LogLevel string
	// LogFormat is text (default) or json.
	LogFormat string
	// Handlers are event handler specifications (see ParseHandler).
	Handlers []string
	// Sync are key=path pairs: the file at path follows the key's value.
	Sync []string
	// HandlerConcurrency: see DefaultHandlerConcurrency.
	HandlerConcurrency int
	// HandlerTimeout: see DefaultHandlerTimeout.
	HandlerTimeout time.Duration
	// Admins are the node IDs allowed to revoke members (p2p.Config.Admins);
	// empty lets any member revoke. Every agent of a cluster must list the
	// same IDs.
	Admins []string
	// APIHeaderTimeout: see DefaultAPIHeaderTimeout.
	APIHeaderTimeout time.Duration
	// APIBodyTimeout: see DefaultAPIBodyTimeout.
	APIBodyTimeout time.Duration
	// APIMaxConns: see DefaultAPIMaxConns.
	APIMaxConns int
	// SignBroadcasts signs this node's broadcasts and refuses unsigned or
	// forged ones (p2p.Config.SignBroadcasts); every agent of a network
	// must use the same value.
	SignBroadcasts bool

	// Logger, when set, replaces the logger built from LogLevel, LogFormat
	// and LogOutput (for tests and embedding); LogLevel is then not
	// reloadable.
	Logger *slog.Logger `json:"-"`
	// LogOutput receives the logs (default os.Stderr).
	LogOutput io.Writer `json:"-"`
	// Node is applied to the p2p.Config of the node before it is created
	// (for tests and embedding: shorter intervals, a memory store).
	Node func(*p2p.Config) `json:"-"`

	// secretsIn is the configuration file LoadConfig read a secret or an
	// API token from, which the agent checks like a secret file.
	secretsIn string
}

// Setting describes one configuration setting and its three spellings: the
// flag --Name, the environment variable Env and the key Name of the
// configuration file.
type Setting struct {
	// Name is the flag name and the configuration file key.
	Name string
	// Env is the environment variable.
	Env string
	// Usage describes the setting.
	Usage string
	// Default is the default value, as text.
	Default string
	// List is true for settings that take several values: repeated flags,
	// a JSON array in the file, Separator-separated in the environment.
	List bool
	// Separator splits a list setting's environment variable.
	Separator string
	// Reloadable is true for settings that SIGHUP (Agent.Reload) applies.
	Reloadable bool
	// Type is the value's type for flags and documentation: "string"
	// (when empty), "int" or "duration" (Go syntax: 30s, 1m).
	Type string
	// Bool is true for on/off settings: the flag alone means true.
	Bool bool

	set func(c *Config, values []string) error
}

func single(fn func(c *Config, v string) error) func(*Config, []string) error {
	return func(c *Config, values []string) error {
		if len(values) == 0 {
			return fn(c, "")
		}
		return fn(c, values[len(values)-1])
	}
}

func setString(field func(c *Config) *string) func(*Config, []string) error {
	return single(func(c *Config, v string) error { *field(c) = v; return nil })
}

// settings is the table every source of configuration goes through.
var settings = []Setting{
	{Name: "data", Env: "P2P_DATA", Default: p2p.DefaultDataDir, Usage: "data directory (node key, store, agent.json)",
		set: setString(func(c *Config) *string { return &c.DataDir })},
	{Name: "listen", Env: "P2P_LISTEN", Default: p2p.DefaultListenAddr, Usage: "overlay TCP address to listen on (port 0: any free port)",
		set: setString(func(c *Config) *string { return &c.Listen })},
	{Name: "advertise", Env: "P2P_ADVERTISE", Usage: "address other nodes dial to reach this one (default: the listen address)",
		set: setString(func(c *Config) *string { return &c.Advertise })},
	{Name: "join", Env: "P2P_JOIN", List: true, Separator: ",", Usage: "address of a node already in the network (repeatable, or comma-separated; none starts a new network)",
		set: func(c *Config, v []string) error { c.Join = splitList(v, ","); return nil }},
	{Name: "secret", Env: "P2P_SECRET", Usage: `cluster secret printed by "p2p keygen" (visible in the process list: prefer --secret-file)`,
		set: setString(func(c *Config) *string { return &c.Secret })},
	{Name: "secret-file", Env: "P2P_SECRET_FILE", Usage: "file holding the cluster secret",
		set: setString(func(c *Config) *string { return &c.SecretFile })},
	{Name: "name", Env: "P2P_NAME", Default: "host name", Reloadable: true, Usage: `node name shown by "p2p members"`,
		set: setString(func(c *Config) *string { return &c.Name })},
	{Name: "tag", Env: "P2P_TAGS", List: true, Separator: ",", Reloadable: true, Usage: `key=value label shown by "p2p members" (repeatable)`,
		set: func(c *Config, v []string) error {
			tags, err := ParseTags(splitList(v, ","))
			c.Tags = tags
			return err
		}},
	{Name: "api", Env: "P2P_API", Default: DefaultAPIAddr, Usage: "HTTP API address, host:port or unix:/path",
		set: setString(func(c *Config) *string { return &c.API })},
	{Name: "api-token", Env: "P2P_API_TOKEN", Usage: "bearer token the API requires (required on a non-loopback address; prefer --api-token-file)",
		set: setString(func(c *Config) *string { return &c.APIToken })},
	{Name: "api-token-file", Env: "P2P_API_TOKEN_FILE", Usage: "file holding the API bearer token (keeps it out of the process list)",
		set: setString(func(c *Config) *string { return &c.APITokenFile })},
	{Name: "log-level", Env: "P2P_LOG_LEVEL", Default: "info", Reloadable: true, Usage: "log level: debug, info, warn, error",
		set: setString(func(c *Config) *string { return &c.LogLevel })},
	{Name: "log-format", Env: "P2P_LOG_FORMAT", Default: "text", Usage: "log format: text or json",
		set: setString(func(c *Config) *string { return &c.LogFormat })},
	{Name: "handler", Env: "P2P_HANDLERS", List: true, Separator: "\n", Reloadable: true,
		Usage: "event handler FILTER=COMMAND, FILTER one of msg, msg:broadcast, msg:direct, member, member:join|leave|fail, kv, kv:PREFIX, sync, sync:PREFIX (repeatable)",
		set:   func(c *Config, v []string) error { c.Handlers = splitList(v, "\n"); return nil }},
	{Name: "sync", Env: "P2P_SYNC", List: true, Separator: ",", Reloadable: true, Usage: "KEY=PATH: keep the file PATH equal to the value of KEY (repeatable)",
		set: func(c *Config, v []string) error { c.Sync = splitList(v, ","); return nil }},
	{Name: "handler-concurrency", Env: "P2P_HANDLER_CONCURRENCY", Default: strconv.Itoa(DefaultHandlerConcurrency), Type: "int", Usage: "handler commands running at once",
		set: single(func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return fmt.Errorf("handler-concurrency %q: want a number >= 0", v)
			}
			c.HandlerConcurrency = n
			return nil
		})},
	{Name: "sign-broadcasts", Env: "P2P_SIGN_BROADCASTS", Default: "false", Bool: true,
		Usage: "sign broadcasts with the node key and refuse unsigned or forged ones (every agent of a network must agree)",
		set: single(func(c *Config, v string) error {
			on, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("sign-broadcasts %q: want true or false", v)
			}
			c.SignBroadcasts = on
			return nil
		})},
	{Name: "handler-timeout", Env: "P2P_HANDLER_TIMEOUT", Default: DefaultHandlerTimeout.String(), Type: "duration", Usage: "time after which a handler command is killed",
		set: single(func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return fmt.Errorf("handler-timeout %q: want a duration such as 30s", v)
			}
			c.HandlerTimeout = d
			return nil
		})},
	{Name: "admin", Env: "P2P_ADMINS", List: true, Separator: ",", Usage: `node ID allowed to revoke members with "p2p members revoke" (repeatable; none: any member may)`,
		set: func(c *Config, v []string) error {
			c.Admins = splitList(v, ",")
			_, err := parseAdmins(c.Admins)
			return err
		}},
}

// parseAdmins parses the IDs of the admin setting.
func parseAdmins(ids []string) ([]peer.ID, error) {
	admins := make([]peer.ID, 0, len(ids))
	for _, text := range ids {
		id, err := peer.ParseID(text)
		if err != nil {
			return nil, fmt.Errorf("admin %q: want a node ID as `p2p info` prints it", text)
		}
		admins = append(admins, id)
	}
	return admins, nil
}

// settingRef names a setting as an operator sets it, for error messages:
// "--log-level ($P2P_LOG_LEVEL)".
func settingRef(name string) string {
	for _, s := range settings {
		if s.Name == name {
			return "--" + s.Name + " ($" + s.Env + ")"
		}
	}
	return "--" + name
}

// Settings returns the agent's settings in a stable order (for building
// flags and documentation).
func Settings() []Setting { return append([]Setting(nil), settings...) }

// Sources are where LoadConfig reads settings from; later sources win.
type Sources struct {
	// File is a JSON configuration file (optional): an object whose keys are
	// setting names, with a string (or number, or boolean) for a single
	// setting and a string or an array of strings for a list setting.
	File string
	// Env looks environment variables up (os.LookupEnv; nil: none).
	Env func(string) (string, bool)
	// Flags holds the values of the flags given on the command line, by
	// setting name.
	Flags map[string][]string
}

// LoadConfig builds a Config from the file, then the environment, then the
// flags: flags win over the environment, which wins over the file.
func LoadConfig(src Sources) (Config, error) {
	var c Config
	if src.File != "" {
		if err := applyFile(&c, src.File); err != nil {
			return Config{}, err
		}
	}
	if src.Env != nil {
		for _, s := range settings {
			v, ok := src.Env(s.Env)
			if !ok {
				continue
			}
			if err := s.set(&c, []string{v}); err != nil {
				return Config{}, fmt.Errorf("environment %s: %w", s.Env, err)
			}
		}
	}
	for _, s := range settings {
		v, ok := src.Flags[s.Name]
		if !ok {
			continue
		}
		if err := s.set(&c, v); err != nil {
			return Config{}, fmt.Errorf("flag --%s: %w", s.Name, err)
		}
	}
	return c, nil
}

func applyFile(c *Config, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	return applyFileData(c, path, data)
}

// applyFileData applies the content of a configuration file.
func applyFileData(c *Config, path string, data []byte) error {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return fmt.Errorf("config file %s: not a JSON object: %w", path, err)
	}
	if dec.More() {
		return fmt.Errorf("config file %s: data after the JSON object", path)
	}
	byName := map[string]Setting{}
	for _, s := range settings {
		byName[s.Name] = s
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s, ok := byName[k]
		if !ok {
			return fmt.Errorf("config file %s: unknown setting %q", path, k)
		}
		values, err := fileValues(raw[k], s.List)
		if err != nil {
			return fmt.Errorf("config file %s: setting %q: %w", path, k, err)
		}
		if err := s.set(c, values); err != nil {
			return fmt.Errorf("config file %s: %w", path, err)
		}
		if (k == "secret" || k == "api-token") && strings.TrimSpace(strings.Join(values, "")) != "" {
			c.secretsIn = path
		}
	}
	return nil
}

func fileValues(raw json.RawMessage, list bool) ([]string, error) {
	var str string
	if err := json.Unmarshal(raw, &str); err == nil {
		return []string{str}, nil
	}
	if list {
		var strs []string
		if err := json.Unmarshal(raw, &strs); err == nil {
			return strs, nil
		}
		return nil, errors.New("want a string or an array of strings")
	}
	var scalar any
	if err := json.Unmarshal(raw, &scalar); err == nil {
		switch v := scalar.(type) {
		case float64:
			return []string{strconv.FormatFloat(v, 'f', -1, 64)}, nil
		case bool:
			return []string{strconv.FormatBool(v)}, nil
		}
	}
	return nil, errors.New("want a string, a number or a boolean")
}

// splitList splits every value on sep and drops empty items.
func splitList(values []string, sep string) []string {
	var out []string
	for _, v := range values {
		for _, item := range strings.Split(v, sep) {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
	}
	return out
}

// ParseTags parses key=value pairs.
func ParseTags(pairs []string) (map[string]string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	tags := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("tag %q: want key=value", p)
		}
		tags[k] = strings.TrimSpace(v)
	}
	return tags, nil
}

// withDefaults validates c and fills in the defaults.
func (c Config) withDefaults() (Config, error) {
	if c.DataDir == "" {
		c.DataDir = p2p.DefaultDataDir
	}
	if c.Listen == "" {
		c.Listen = p2p.DefaultListenAddr
	}
	if c.API == "" {
		c.API = DefaultAPIAddr
	}
	if c.Name == "" {
		c.Name, _ = os.Hostname()
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.LogFormat == "" {
		c.LogFormat = "text"
	}
	if c.HandlerConcurrency == 0 {
		c.HandlerConcurrency = DefaultHandlerConcurrency
	}
	if c.HandlerTimeout == 0 {
		c.HandlerTimeout = DefaultHandlerTimeout
	}
	if c.LogOutput == nil {
		c.LogOutput = os.Stderr
	}
	if c.APIHeaderTimeout == 0 {
		c.APIHeaderTimeout = DefaultAPIHeaderTimeout
	}
	if c.APIBodyTimeout == 0 {
		c.APIBodyTimeout = DefaultAPIBodyTimeout
	}
	if c.APIMaxConns == 0 {
		c.APIMaxConns = DefaultAPIMaxConns
	}
	if c.APIHeaderTimeout < 0 || c.APIBodyTimeout < 0 || c.APIMaxConns < 0 {
		return c, fmt.Errorf("agent: Config.APIHeaderTimeout, APIBodyTimeout and APIMaxConns must not be negative (got %v, %v, %d)", c.APIHeaderTimeout, c.APIBodyTimeout, c.APIMaxConns)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return c, err
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return c, fmt.Errorf("agent: %s %q: want text or json", settingRef("log-format"), c.LogFormat)
	}
	if c.HandlerConcurrency < 0 {
		return c, fmt.Errorf("agent: %s %d is negative", settingRef("handler-concurrency"), c.HandlerConcurrency)
	}
	if c.HandlerTimeout < 0 {
		return c, fmt.Errorf("agent: %s %v is negative", settingRef("handler-timeout"), c.HandlerTimeout)
	}
	if err := CheckAdvertise(c.Advertise); err != nil {
		return c, fmt.Errorf("agent: %s: %w", settingRef("advertise"), err)
	}
	if len(c.Name) > gossip.MaxNameLen {
		return c, fmt.Errorf("agent: %s is %d bytes long: at most %d", settingRef("name"), len(c.Name), gossip.MaxNameLen)
	}
	if len(c.Tags) > gossip.MaxTags {
		return c, fmt.Errorf("agent: %s: %d tags, at most %d", settingRef("tag"), len(c.Tags), gossip.MaxTags)
	}
	for k, v := range c.Tags {
		if k == "" {
			return c, fmt.Errorf("agent: %s has an empty key", settingRef("tag"))
		}
		if len(k) > gossip.MaxTagKeyLen || len(v) > gossip.MaxTagValueLen {
			return c, fmt.Errorf("agent: %s %.40q...: keys of at most %d bytes, values of at most %d", settingRef("tag"), k+"="+v, gossip.MaxTagKeyLen, gossip.MaxTagValueLen)
		}
	}
	if _, err := parseHandlers(c.Handlers); err != nil {
		return c, err
	}
	if _, err := parseSyncs(c.Sync); err != nil {
		return c, err
	}
	if c.APIToken == "" && c.APITokenFile != "" {
		data, err := os.ReadFile(c.APITokenFile)
		if err != nil {
			return c, fmt.Errorf("agent: %s: %w", settingRef("api-token-file"), err)
		}
		if c.APIToken = strings.TrimSpace(string(data)); c.APIToken == "" {
			return c, fmt.Errorf("agent: %s %s is empty", settingRef("api-token-file"), c.APITokenFile)
		}
	}
	if c.APIToken == "" && !isLoopbackAPI(c.API) {
		return c, fmt.Errorf("agent: %s or %s is required when the API listens on %s, which is not a loopback address", settingRef("api-token"), settingRef("api-token-file"), c.API)
	}
	return c, nil
}

// secret returns the cluster secret from Secret or SecretFile.
func (c Config) secret() ([]byte, error) {
	text := c.Secret
	if text == "" && c.SecretFile != "" {
		data, err := os.ReadFile(c.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("agent: secret file: %w", err)
		}
		text = string(data)
	}
	secret, err := p2p.ParseSecret(text)
	if err != nil {
		return nil, fmt.Errorf("agent: %s: %w", settingRef("secret"), err)
	}
	return secret, nil
}

func parseLevel(s string) (slog.Level, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("agent: %s %q: want debug, info, warn or error", settingRef("log-level"), s)
	}
	return level, nil
}

// isLoopbackAPI reports whether addr only accepts connections from this
// machine: a unix socket, "localhost" or a loopback IP.
// MaxAdvertiseLen is the longest address a node may advertise: it travels
// in the handshake and in the node's member record.
const MaxAdvertiseLen = 255

// CheckAdvertise says, in an operator's words, why addr cannot be
// advertised to other nodes (nil for "", which means the listen address).
// The agent checks --advertise with it; `p2p run` and `p2p dht` do too.
func CheckAdvertise(addr string) error {
	if addr == "" {
		return nil
	}
	if len(addr) > MaxAdvertiseLen {
		return fmt.Errorf("%.40q... is %d bytes long: at most %d", addr, len(addr), MaxAdvertiseLen)
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return fmt.Errorf("%q: want host:port, the address other nodes dial", addr)
	}
	return nil
}

func isLoopbackAPI(addr string) bool {
	if strings.HasPrefix(addr, "unix:") {
		return true
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
