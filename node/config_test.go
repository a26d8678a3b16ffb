package node

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/persistence"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigFileSectionsAreEmptyNotTheDemo(t *testing.T) {
	for _, text := range []string{"", "node: {http: 127.0.0.1:9999}\n"} {
		c, err := LoadConfig(writeConfig(t, text))
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if len(c.Auth.Tokens) != 0 || c.Node.DataDir != "./data" || c.Node.Partitions != 64 {
			t.Fatalf("%q loaded as %+v", text, c)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("%q: %v", text, err)
		}
	}
}

func TestConfigRefusesUnknownKeys(t *testing.T) {
	if _, err := LoadConfig(writeConfig(t, "node: {htp: 127.0.0.1:1}\n")); err == nil || !strings.Contains(err.Error(), "htp") {
		t.Fatalf("unknown key: %v", err)
	}
}

func TestConfigValidateListsEveryProblem(t *testing.T) {
	c, err := LoadConfig(writeConfig(t, `
node: {partitions: 5000, idle_timeout: 1ms, conn_credit: -1}
cluster: {join: [127.0.0.1:7947]}
auth:
  tokens:
    - {token: a, role: agent}
    - {token: a, role: boss}
    - {token: "", role: channel}
`))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil {
		t.Fatal("an invalid config validated")
	}
	for _, want := range []string{"node.partitions", "node.idle_timeout", "node.conn_credit", "cluster.gossip",
		"tokens[0]: role agent needs agent", "tokens[1]: role \"boss\"", "tokens[1]: the same token as auth.tokens[0]",
		"tokens[2]: give exactly one of token, token_sha256 and token_env (0 given)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the problems do not mention %q:\n%v", want, err)
		}
	}
}

// A token is given in clear, as its SHA-256 or as the name of an
// environment variable, exactly one of the three; every problem is listed
// with the token's place and name, never its text.
func TestConfigTokenKindsAreCheckedTogether(t *testing.T) {
	t.Setenv("TL_TEST_AGENT_TOKEN", "alice-from-env")
	t.Setenv("TL_TEST_EMPTY", "")
	c, err := LoadConfig(writeConfig(t, `
node: {max_concurrent_requests: -2}
auth:
  allowed_origins: [https://desk.example.com, "desk.example.com", "https://x.example.com/path"]
  tokens:
    - {token_sha256: "`+sha256Hex("gw-secret")+`", role: channel, rate: 100}
    - {token_env: TL_TEST_AGENT_TOKEN, role: agent, agent: alice, name: alice-desk}
    - {token: both, token_sha256: "`+sha256Hex("both")+`", role: channel, name: two-kinds}
    - {token_sha256: "abc", role: channel}
    - {token_env: TL_TEST_UNSET_VARIABLE, role: supervisor}
    - {token_env: TL_TEST_EMPTY, role: supervisor}
    - {token: gw-secret, role: channel, rate: -1}
    - {token: alice-from-env, role: admin}
`))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil {
		t.Fatal("an invalid auth section validated")
	}
	for _, want := range []string{
		"node.max_concurrent_requests: -2",
		"auth.tokens[2] (two-kinds): give exactly one of token, token_sha256 and token_env (2 given)",
		"auth.tokens[3]: token_sha256 is not 64 hex digits",
		"auth.tokens[4]: token_env: the environment variable TL_TEST_UNSET_VARIABLE is unset or empty",
		"auth.tokens[5]: token_env: the environment variable TL_TEST_EMPTY is unset or empty",
		"auth.tokens[6]: rate -1 is not in",
		"auth.tokens[6]: the same token as auth.tokens[0]",
		"auth.tokens[7]: the same token as auth.tokens[1]",
		`auth.allowed_origins[1]: "desk.example.com" is not an origin`,
		`auth.allowed_origins[2]: "https://x.example.com/path" is not an origin`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the problems do not mention %q:\n%v", want, err)
		}
	}
	for _, secret := range []string{"alice-from-env", "gw-secret"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the problems show a token: %v", err)
		}
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		for _, good := range []string{"auth.tokens[0]", "auth.tokens[1]", "auth.allowed_origins[0]"} {
			if strings.HasPrefix(line, good) {
				t.Errorf("a good entry is reported: %s", line)
			}
		}
	}
}

func sha256Hex(s string) string {
	d := sha256.Sum256([]byte(s))
	return hex.EncodeToString(d[:])
}

func TestDemoConfigValidates(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(c.Auth.Tokens) != 4 {
		t.Fatalf("demo tokens: %+v", c.Auth.Tokens)
	}
}

func TestConfigOffers(t *testing.T) {
	c, err := LoadConfig(writeConfig(t, `
offers:
  - id: payment-plan
    when: "customer.count('payment.failed', duration('24h')) > 0"
    text: "Split it in three?"
    priority: 50
    score: "has(customer.profile.spend) ? customer.profile.spend / 100.0 : 0.0"
    channels: [sms, email]
    cap: {max: 2, per: 24h}
rules:
  - id: propose
    when: "event.type == 'page.viewed'"
    do: [{next_best_action: {}}, {next_best_action: {expires: 2h}}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	p, _, err := c.journeyPolicy()
	if err != nil {
		t.Fatal(err)
	}
	o := p.Offers.Offer("payment-plan")
	if o == nil || o.Priority != 50 || o.Cap == nil || o.Cap.Max != 2 || o.Cap.Per != 24*time.Hour || len(o.Channels) != 2 {
		t.Fatalf("offer %+v", o)
	}
	do := p.Rules.Rule("propose").Do
	if do[0].NextBestAction == nil || do[0].NextBestAction.Expires != 24*time.Hour || do[1].NextBestAction.Expires != 2*time.Hour {
		t.Errorf("actions %+v %+v", do[0].NextBestAction, do[1].NextBestAction)
	}
}

func TestConfigOffersListsEveryProblem(t *testing.T) {
	c, err := LoadConfig(writeConfig(t, `
offers:
  - {id: a, when: "customer.profile.tier ==", text: x}
  - {id: a, when: "true", text: x, score: "'high'"}
  - {id: "Bad Id", when: "true", text: x, cap: {max: 0, per: 1h}}
rules:
  - id: propose
    when: "true"
    do: [{next_best_action: {}}]
`))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil {
		t.Fatal("invalid offers validated")
	}
	for _, want := range []string{"offers: offer a: when:", "offer a: duplicate id", "offer a: score: is of type string",
		`offer #2 (id "Bad Id"): id must match`, "cap.max 0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the problems do not mention %q:\n%v", want, err)
		}
	}
	// A rule's next_best_action without offers is refused too.
	c, err = LoadConfig(writeConfig(t, `
rules:
  - {id: propose, when: "true", do: [{next_best_action: {}}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "rule propose: next_best_action needs offers") {
		t.Errorf("next_best_action without offers: %v", err)
	}
	// Unknown fields of the action are refused when loading.
	if _, err := LoadConfig(writeConfig(t, `
rules:
  - {id: propose, when: "true", do: [{next_best_action: {offer: x}}]}
`)); err == nil || !strings.Contains(err.Error(), `unknown field "offer"`) {
		t.Errorf("next_best_action {offer}: %v", err)
	}
}

func TestConfigAudit(t *testing.T) {
	c, err := LoadConfig(writeConfig(t, "audit: {retention: 48h, max_entries: 500}\nauth: {tokens: [{token: t1, role: admin, name: ops}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Audit.Retention != 48*time.Hour || c.Audit.MaxEntries != 500 || c.Auth.Tokens[0].Name != "ops" {
		t.Fatalf("audit loaded as %+v, token %+v", c.Audit, c.Auth.Tokens[0])
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.Audit.MaxEntries = -1
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "audit.max_entries") {
		t.Fatalf("a negative max_entries: %v", err)
	}
}

func TestConfigMemoryLimit(t *testing.T) {
	avail, _, err := availableMemory()
	if err != nil {
		t.Skip("no /proc/meminfo:", err)
	}
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"2GiB", 2 << 30}, {"512MiB", 512 << 20}, {"1.5GB", 1_500_000_000}, {"268435456", 256 << 20},
		{"50%", avail / 2}, {"", avail * 3 / 4},
	} {
		n := NodeConfig{MemoryLimit: c.in}
		got, err := n.MemoryLimitBytes()
		if err != nil || (got != c.want && (got-c.want > 1 || c.want-got > 1)) {
			t.Errorf("memory_limit %q: %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	// The default resident cap: half the budget at 16 KiB a customer.
	if got := (&NodeConfig{}).ResidentMax(2 << 30); got != 65536 {
		t.Errorf("resident max for 2 GiB: %d", got)
	}
	if got := (&NodeConfig{MaxResidentCustomers: 500}).ResidentMax(2 << 30); got != 500 {
		t.Errorf("resident max set to 500: %d", got)
	}
	// The store writer remembers twice the resident customers' last seqs,
	// at least 65,536, at most persistence's bound.
	for _, c := range []struct {
		n     NodeConfig
		limit int64
		want  int
	}{
		{NodeConfig{}, 2 << 30, 131072},
		{NodeConfig{}, 64 << 20, 65536},
		{NodeConfig{MaxResidentCustomers: 1_000_000}, 2 << 30, 2_000_000},
		{NodeConfig{MaxResidentCustomers: maxResidentMax}, 2 << 30, persistence.LastSeqsMaxMax},
	} {
		if got := c.n.lastSeqsMax(c.limit); got != c.want {
			t.Errorf("last seqs max for %d resident, %d bytes: %d, want %d", c.n.MaxResidentCustomers, c.limit, got, c.want)
		}
	}
}

func TestConfigMemoryProblemsAreListed(t *testing.T) {
	for text, want := range map[string]string{
		"node: {memory_limit: 2 gigs}":               `node.memory_limit: unit "gigs"`,
		"node: {memory_limit: 12MiB}":                "node.memory_limit: 12MiB (12582912 bytes) is under 64 MiB",
		"node: {memory_limit: 150%}":                 `node.memory_limit: "150%" is not a share`,
		"node: {memory_limit: 1000TiB}":              "node.memory_limit: 1000TiB is more than the",
		"node: {max_resident_customers: -1}":         "node.max_resident_customers: -1 is not in 1..100000000",
		"node: {memory_limit: -1GiB}":                `node.memory_limit: "-1GiB" is not a size`,
		"node: {max_resident_customers: 1000000000}": "node.max_resident_customers: 1000000000",
	} {
		c, err := LoadConfig(writeConfig(t, text+"\n"))
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want %q", text, err, want)
		}
	}
	// Both problems of one file at once.
	c, _ := LoadConfig(writeConfig(t, "node: {memory_limit: 1KB, max_resident_customers: -5}\n"))
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "node.memory_limit") || !strings.Contains(err.Error(), "node.max_resident_customers") {
		t.Errorf("two problems: %v", err)
	}
}
