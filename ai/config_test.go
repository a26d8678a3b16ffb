package ai

import (
	"context"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// binaryConfig mimics how the binary embeds Config under its ai: key.
type binaryConfig struct {
	AI struct {
		Config        `yaml:",inline"`
		EscalateBelow float64 `yaml:"escalate_below"`
	} `yaml:"ai"`
}

func parseAI(t *testing.T, text string) (Config, error) {
	t.Helper()
	var c binaryConfig
	err := yaml.Unmarshal([]byte(text), &c)
	return c.AI.Config, err
}

func TestConfigYAMLBrainForms(t *testing.T) {
	c, err := parseAI(t, "ai:\n  brain: builtin\n  escalate_below: 0.55\n  intents:\n    - {name: hi, examples: [hello], answer: Hello!}\n")
	if err != nil || c.Brain.Kind != KindBuiltin || c.Brain.OpenAI != nil || len(c.Intents) != 1 || c.Intents[0].Answer != "Hello!" {
		t.Fatalf("scalar builtin: %+v, %v", c, err)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	c, err = parseAI(t, `
ai:
  brain:
    openai: {base_url: "http://127.0.0.1:11434", model: llama3, api_key_env: LLM_KEY, timeout: 2s}
`)
	if err != nil {
		t.Fatal(err)
	}
	want := OpenAIConfig{BaseURL: "http://127.0.0.1:11434", Model: "llama3", APIKeyEnv: "LLM_KEY", Timeout: 2 * time.Second, Retries: RetriesDefault}
	if c.Brain.Kind != KindOpenAI || c.Brain.OpenAI == nil || *c.Brain.OpenAI != want {
		t.Errorf("openai mapping: %+v, want %+v", c.Brain.OpenAI, want)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	c, err = parseAI(t, "ai:\n  brain: {openai: {base_url: http://h/v1, model: m, retries: 0}}\n")
	if err != nil || c.Brain.OpenAI.Retries != 0 {
		t.Errorf("explicit retries 0: %+v, %v", c.Brain.OpenAI, err)
	}
	c, err = parseAI(t, "ai: {}\n")
	if err != nil || c.Validate() != nil || c.Brain.Kind != "" {
		t.Errorf("empty: %+v, %v", c, err)
	}
	out, err := yaml.Marshal(Config{Brain: BrainConfig{Kind: KindOpenAI, OpenAI: &want}})
	if err != nil || !strings.Contains(string(out), "openai:") || !strings.Contains(string(out), "base_url: http://127.0.0.1:11434") {
		t.Errorf("marshal: %s, %v", out, err)
	}
}

func TestConfigYAMLRefusesUnknownShapes(t *testing.T) {
	for text, want := range map[string]string{
		"ai:\n  brain: {gpt: {model: m}}\n":                 `unknown brain "gpt"`,
		"ai:\n  brain: {openai: {base-url: http://h}}\n":    `unknown field "base-url"`,
		"ai:\n  brain: [openai]\n":                          "want builtin, openai",
		"ai:\n  brain: {openai: {timeout: soon}}\n":         "ai.brain.openai",
		"ai:\n  brain: {openai: {model: m}, builtin: {}}\n": "want one key",
	} {
		if _, err := parseAI(t, text); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", text, err, want)
		}
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	c, err := parseAI(t, `
ai:
  brain:
    openai: {retries: -1, timeout: 10m}
  intents:
    - {name: refund, examples: [I want a refund]}
    - {name: refund, examples: [money back]}
    - {name: "", examples: [hello]}
    - {name: empty}
    - {name: stopwords, examples: [the and of]}
`)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil {
		t.Fatal("Validate accepted a broken config")
	}
	for _, want := range []string{
		"base_url is required", "model is required", "retries -1", "timeout 10m0s",
		`intent "refund": duplicate name`, "intent #3: empty name", `intent "empty": no examples`,
		`intent "stopwords": example 1 "the and of" has no words`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error lacks %q:\n%v", want, err)
		}
	}
	c = Config{Brain: BrainConfig{Kind: "gpt"}}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `unknown kind "gpt"`) {
		t.Errorf("unknown kind: %v", err)
	}
	c = Config{Brain: BrainConfig{Kind: KindOpenAI, OpenAI: &OpenAIConfig{BaseURL: "ftp://h", Model: "m", Retries: RetriesMax + 1}}}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "want an http or https URL") || !strings.Contains(err.Error(), "retries 6") {
		t.Errorf("bad url and retries: %v", err)
	}
	many := Intent{Name: "many", Examples: make([]string, ExamplesPerIntentMax+1)}
	for i := range many.Examples {
		many.Examples[i] = "refund please"
	}
	c = Config{Intents: []Intent{many}}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "ExamplesPerIntentMax") {
		t.Errorf("too many examples: %v", err)
	}
}

func TestNewBuildsTheConfiguredBrain(t *testing.T) {
	kb, err := LoadKnowledgeDir(demoKBDir)
	if err != nil {
		t.Fatal(err)
	}
	brain, err := New(Config{Intents: loadDemoIntents(t)}, kb)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := brain.(*Builtin); !ok {
		t.Errorf("default brain is %T, want *Builtin", brain)
	}
	brain, err = New(Config{Brain: BrainConfig{Kind: KindOpenAI, OpenAI: &OpenAIConfig{BaseURL: "http://127.0.0.1:1", Model: "m"}}}, kb)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := brain.(*OpenAI); !ok {
		t.Errorf("openai brain is %T", brain)
	}
	r, err := brain.Reply(context.Background(), Request{Text: "my card payment failed again"})
	if err != nil || r.Brain != BrainBuiltinFallback || r.Articles[0] != "card-declined" {
		t.Errorf("unreachable server: %+v, %v; want the builtin's fallback", r, err)
	}
	if _, err := New(Config{Brain: BrainConfig{Kind: "gpt"}}, kb); err == nil {
		t.Error("New accepted an unknown brain")
	}
}
