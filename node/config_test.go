package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	for _, want := range []string{"node.partitions", "node.idle_timeout", "node.conn_credit", "cluster.join",
		"tokens[0]: role agent needs agent", "tokens[1]: role \"boss\"", "given twice", "tokens[2]: token is empty"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the problems do not mention %q:\n%v", want, err)
		}
	}
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
