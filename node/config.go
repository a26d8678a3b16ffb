package node

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"time"

	"github.com/throughline/throughline/actors"
	"github.com/throughline/throughline/ai"
	"github.com/throughline/throughline/gateway"
	"github.com/throughline/throughline/journey"
	"gopkg.in/yaml.v3"
)

// Config is a node's configuration (PROTOCOL section 6): one YAML file.
// Immutable after start.
type Config struct {
	Node    NodeConfig    `yaml:"node"`
	Cluster ClusterConfig `yaml:"cluster"`
	Auth    AuthConfig    `yaml:"auth"`
	// AI is the bot; nil (no `ai:`): no bot, messages are only recorded.
	AI *AIConfig `yaml:"ai"`
	// Knowledge is the directory of the bot's markdown articles.
	Knowledge string `yaml:"knowledge"`
	// Rules are the journey rules, in order.
	Rules []journey.RuleConfig `yaml:"rules"`
	// Workflows are the named workflows rules start.
	Workflows []journey.WorkflowConfig `yaml:"workflows"`
	// Governance passes every proactive message.
	Governance *journey.Governance `yaml:"governance"`
	// Offers are the next best action's catalog (PROTOCOL section 5).
	Offers []journey.OfferConfig `yaml:"offers"`
	// Conversations: how long an inactive bot conversation stays open.
	Conversations ConversationsConfig `yaml:"conversations"`
	// Queues are the routing queues; this version routes a conversation to
	// a queue by name (rules and the bot's hand-over are checked against
	// these names); agents and offers come with routing.
	Queues []QueueConfig `yaml:"queues"`
	// Agents are the agents routing offers conversations to.
	Agents []AgentConfig `yaml:"agents"`
	// Broadcasts paces broadcasts (PROTOCOL section 5).
	Broadcasts BroadcastsConfig `yaml:"broadcasts"`
	// Audit bounds the audit log (PROTOCOL section 3 GET /v1/audit).
	Audit AuditConfig `yaml:"audit"`
	// Channels are the provider adapters (PROTOCOL section 9).
	Channels ChannelsConfig `yaml:"channels"`
	// Web serves the web app at / (PROTOCOL section 10); on by default.
	Web WebConfig `yaml:"web"`

	// Logger receives every subsystem's logs; nil: slog.Default(). Not
	// read from the file.
	Logger *slog.Logger `yaml:"-"`
	// FailSyncAfter, when above 0, makes every WAL sync after that many
	// fail: a test hook of fault injection (persistence.Options). Not read
	// from the file.
	FailSyncAfter int `yaml:"-"`
	// DiskFullAfter, when above 0, makes every WAL and sstable write fail
	// with ENOSPC after that many WAL writes: a test hook
	// (persistence.Options). Not read from the file.
	DiskFullAfter int `yaml:"-"`
	// FaultsFile, when set, names a file a test writes to cut this node
	// off from others: one node name per line, re-read every 100 ms, the
	// raft and remote traffic with those nodes dropped (a network
	// partition; an empty file heals). A test hook; not read from the
	// file.
	FaultsFile string `yaml:"-"`

	// demoKnowledge is the built-in demo's knowledge base (Default only).
	demoKnowledge fs.FS
	// demoWebchatSecret signs the demo shop's visitor tokens (Default
	// only: random at each start).
	demoWebchatSecret []byte
}

// DemoArticles lists the built-in demo's knowledge articles (none unless
// the config is Default's).
func (c *Config) DemoArticles() []string {
	if c.demoKnowledge == nil {
		return nil
	}
	articles, _ := fs.Glob(c.demoKnowledge, "*.md")
	return articles
}

// AIConfig is the `ai:` section: the brain and when the bot hands over.
type AIConfig struct {
	ai.Config `yaml:",inline"`
	// EscalateBelow: replies with a confidence under it hand over.
	EscalateBelow float64 `yaml:"escalate_below"`
	// FrustrationBelow: a sentiment under it hands over; default -0.5.
	FrustrationBelow float64 `yaml:"frustration_below"`
	// DefaultQueue is where the bot hands over when no rule said; required.
	DefaultQueue    string `yaml:"default_queue"`
	DefaultPriority int    `yaml:"default_priority"`
	// BlockedTopics are intents the bot never answers (guardrails).
	BlockedTopics []string `yaml:"blocked_topics"`
	// Handover is what the customer is told when a person takes over.
	Handover string `yaml:"handover"`
}

// BroadcastsConfig is the `broadcasts:` section.
type BroadcastsConfig struct {
	// Rate is how many customers broadcasts ask per second; default 2000.
	Rate int `yaml:"rate"`
}

// AuditConfig is the `audit:` section: how long and how many audit
// entries are kept, the oldest deleted first.
type AuditConfig struct {
	// Retention; default 720h (30 days).
	Retention time.Duration `yaml:"retention"`
	// MaxEntries; default 100000.
	MaxEntries int `yaml:"max_entries"`
}

// maxConcurrentRequestsMax bounds node.max_concurrent_requests.
const maxConcurrentRequestsMax = 1_000_000

// broadcastRateMax bounds broadcasts.rate.
const broadcastRateMax = 1_000_000

// ConversationsConfig is the `conversations:` section.
type ConversationsConfig struct {
	// CloseAfter closes a conversation the bot holds after this long
	// without a message; default 30m.
	CloseAfter time.Duration `yaml:"close_after"`
}

// QueueConfig is one queue of the `queues:` section (PROTOCOL 6).
type QueueConfig struct {
	Name           string        `yaml:"name"`
	Skills         []string      `yaml:"skills"`
	OfferTimeout   time.Duration `yaml:"offer_timeout"`    // default 20s
	AfterWork      time.Duration `yaml:"after_work"`       // default 0
	StickyWait     time.Duration `yaml:"sticky_wait"`      // default 0
	CallbackAfter  time.Duration `yaml:"callback_after"`   // default 0: no callback offer
	AgingPerMinute int           `yaml:"aging_per_minute"` // priority gained per minute waited; default 1
}

// AgentConfig is one agent of the `agents:` section: its skills and its
// capacity, a number or per channel ({voice: 1, chat: 3}).
type AgentConfig struct {
	ID       string           `yaml:"id"`
	Skills   []string         `yaml:"skills"`
	Capacity journey.Capacity `yaml:"capacity"`
}

// NodeConfig: this node. A key omitted takes its default.
type NodeConfig struct {
	Name    string `yaml:"name"`     // default n1
	DataDir string `yaml:"data_dir"` // default ./data
	HTTP    string `yaml:"http"`     // default 127.0.0.1:8080
	// Partitions is fixed when the data directory is created. Default 64.
	Partitions int `yaml:"partitions"`
	// IdleTimeout passivates a customer idle this long. Default 2m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// ConnCredit is the events one WebSocket may have in flight. Default 1024.
	ConnCredit int `yaml:"conn_credit"`
	// MaxConnections is the WebSocket limit. Default 10000.
	MaxConnections int `yaml:"max_connections"`
	// MaxConcurrentRequests bounds the HTTP requests in flight (WebSockets
	// and probes aside); past it requests answer 503. Default 1024.
	MaxConcurrentRequests int `yaml:"max_concurrent_requests"`
	// DeskGrace is how long an agent whose desks all disconnected keeps
	// its presence and assignments. Default 30s.
	DeskGrace time.Duration `yaml:"desk_grace"`
	// MemoryLimit is the node's memory budget (config_memory.go): bytes
	// with a unit ("2GiB") or a share of the memory available ("75%").
	// It is the Go soft memory limit; past 85% of it new work is refused
	// and customers passivate until below 75%. Default "75%".
	MemoryLimit string `yaml:"memory_limit"`
	// MaxResidentCustomers bounds the customers in memory; past it the
	// least recently active passivate. Default: half the budget at 16 KiB
	// a customer (a 2 GiB budget: 65,536), at least 1,000.
	MaxResidentCustomers int `yaml:"max_resident_customers"`
	// TransportConfig: TLS, timeouts and sizes of the HTTP listener.
	TransportConfig `yaml:",inline"`
}

// AuthConfig holds the bearer tokens and what browsers may do with them.
// A reload (SIGHUP) re-reads this section only.
type AuthConfig struct {
	// Tokens: each gives exactly one of token, token_sha256 (the hex
	// SHA-256 of the token) and token_env (the environment variable that
	// holds it); rate bounds its events plus requests a second.
	Tokens []gateway.Token `yaml:"tokens"`
	// AllowedOrigins are the origins, besides the server's own, whose
	// pages may open the agent and channel WebSockets.
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// authTokensMax bounds auth.tokens.
const authTokensMax = 10000

// gatewayTokens are the tokens with every token_env read from the
// environment.
func (a AuthConfig) gatewayTokens() []gateway.Token {
	out := make([]gateway.Token, len(a.Tokens))
	for i, t := range a.Tokens {
		if t.TokenEnv != "" {
			t.Token = os.Getenv(t.TokenEnv)
		}
		out[i] = t
	}
	return out
}

// validate lists the auth section's problems.
func (a AuthConfig) validate() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(a.Tokens) > authTokensMax {
		add("auth.tokens: %d tokens; at most %d", len(a.Tokens), authTokensMax)
	}
	seen := map[[sha256.Size]byte]int{}
	for i, t := range a.Tokens {
		name := fmt.Sprintf("auth.tokens[%d]", i)
		if t.Name != "" {
			name += " (" + t.Name + ")"
		}
		switch t.Role {
		case gateway.RoleChannel, gateway.RoleSupervisor, gateway.RoleAdmin:
		case gateway.RoleAgent:
			if t.Agent == "" {
				add("%s: role agent needs agent", name)
			}
		default:
			add("%s: role %q is not channel, agent, supervisor or admin", name, t.Role)
		}
		if t.Rate < 0 || t.Rate > gateway.TokenRateMax {
			add("%s: rate %d is not in 1..%d (0: no limit)", name, t.Rate, gateway.TokenRateMax)
		}
		given := 0
		for _, v := range []string{t.Token, t.TokenSHA256, t.TokenEnv} {
			if v != "" {
				given++
			}
		}
		var digest [sha256.Size]byte
		switch {
		case given != 1:
			add("%s: give exactly one of token, token_sha256 and token_env (%d given)", name, given)
			continue
		case t.Token != "":
			digest = sha256.Sum256([]byte(t.Token))
		case t.TokenSHA256 != "":
			b, err := hex.DecodeString(t.TokenSHA256)
			if err != nil || len(b) != sha256.Size {
				add("%s: token_sha256 is not 64 hex digits (the SHA-256 of the token)", name)
				continue
			}
			copy(digest[:], b)
		default:
			v := os.Getenv(t.TokenEnv)
			if v == "" {
				add("%s: token_env: the environment variable %s is unset or empty", name, t.TokenEnv)
				continue
			}
			digest = sha256.Sum256([]byte(v))
		}
		if j, dup := seen[digest]; dup {
			add("%s: the same token as auth.tokens[%d]", name, j)
		}
		seen[digest] = i
	}
	for i, o := range a.AllowedOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" {
			add("auth.allowed_origins[%d]: %q is not an origin (scheme://host[:port])", i, o)
		}
	}
	return errs
}

// Default is the built-in demo configuration used when no file is given.
func Default() Config {
	c := Config{Auth: AuthConfig{Tokens: []gateway.Token{
		{Token: "gw-secret", Role: gateway.RoleChannel},
		{Token: "alice-secret", Role: gateway.RoleAgent, Agent: "alice"},
		{Token: "sup-secret", Role: gateway.RoleSupervisor},
		{Token: "admin-secret", Role: gateway.RoleAdmin, Name: "demo-admin"},
	}}}
	c.Node.ensureDefaults()
	c.withDemoJourney()
	c.demoWebchatSecret = make([]byte, 32)
	if _, err := rand.Read(c.demoWebchatSecret); err != nil {
		panic("node: crypto/rand: " + err.Error())
	}
	return c
}

func (n *NodeConfig) ensureDefaults() {
	if n.Name == "" {
		n.Name = "n1"
	}
	if n.DataDir == "" {
		n.DataDir = "./data"
	}
	if n.HTTP == "" {
		n.HTTP = "127.0.0.1:8080"
	}
	if n.Partitions == 0 {
		n.Partitions = 64
	}
	if n.IdleTimeout == 0 {
		n.IdleTimeout = 2 * time.Minute
	}
	if n.ConnCredit == 0 {
		n.ConnCredit = 1024
	}
	if n.MaxConnections == 0 {
		n.MaxConnections = 10000
	}
	if n.MaxConcurrentRequests == 0 {
		n.MaxConcurrentRequests = gateway.MaxConcurrentRequestsDefault
	}
	if n.DeskGrace == 0 {
		n.DeskGrace = 30 * time.Second
	}
	if n.MemoryLimit == "" {
		n.MemoryLimit = MemoryLimitDefault
	}
	n.TransportConfig.ensureDefaults()
}

// LoadConfig reads a YAML file; unknown keys are errors. An omitted section
// is empty, never the demo.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) { // an empty file: every section empty
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	c.SetDefaults()
	return c, nil
}

// SetDefaults fills in the node and cluster defaults (LoadConfig does);
// call it again after changing those sections.
func (c *Config) SetDefaults() {
	c.Node.ensureDefaults()
	c.Cluster.ensureDefaults()
}

// Validate lists every problem in one error.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Node.Partitions < 1 || c.Node.Partitions > 4096 {
		add("node.partitions: %d is not in 1..4096", c.Node.Partitions)
	}
	if c.Node.IdleTimeout < time.Second {
		add("node.idle_timeout: %s is under 1s", c.Node.IdleTimeout)
	}
	if c.Node.ConnCredit < 1 || c.Node.ConnCredit > 65536 {
		add("node.conn_credit: %d is not in 1..65536", c.Node.ConnCredit)
	}
	if c.Node.MaxConnections < 1 || c.Node.MaxConnections > 1_000_000 {
		add("node.max_connections: %d is not in 1..1000000", c.Node.MaxConnections)
	}
	if c.Node.DeskGrace < 100*time.Millisecond || c.Node.DeskGrace > time.Hour {
		add("node.desk_grace: %s is not within 100ms..1h", c.Node.DeskGrace)
	}
	if c.Broadcasts.Rate < 0 || c.Broadcasts.Rate > broadcastRateMax {
		add("broadcasts.rate: %d is not in 1..%d (0: the default, %d)", c.Broadcasts.Rate, broadcastRateMax, actors.BroadcastRateDefault)
	}
	if c.Audit.Retention < 0 {
		add("audit.retention: %s is negative (0: the default, %s)", c.Audit.Retention, actors.AuditRetentionDefault)
	}
	if c.Audit.MaxEntries < 0 || c.Audit.MaxEntries > actors.AuditMaxLimit {
		add("audit.max_entries: %d is not in 1..%d (0: the default, %d)", c.Audit.MaxEntries, actors.AuditMaxLimit, actors.AuditMaxDefault)
	}
	if c.Node.MaxConcurrentRequests < 1 || c.Node.MaxConcurrentRequests > maxConcurrentRequestsMax {
		add("node.max_concurrent_requests: %d is not in 1..%d", c.Node.MaxConcurrentRequests, maxConcurrentRequestsMax)
	}
	errs = append(errs, c.validateMemory()...)
	errs = append(errs, c.Auth.validate()...)
	errs = append(errs, c.validateJourney()...)
	errs = append(errs, c.validateRouting()...)
	errs = append(errs, c.validateChannels()...)
	errs = append(errs, c.validateCluster()...)
	errs = append(errs, c.validateTransport()...)
	return errors.Join(errs...)
}
