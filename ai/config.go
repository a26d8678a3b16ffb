package ai

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Brain kinds.
const (
	KindBuiltin = "builtin"
	KindOpenAI  = "openai"
)

// Config is the ai part of the binary's configuration, embedded inline under
// its `ai:` key. The zero value is a builtin brain with no intents.
type Config struct {
	Brain   BrainConfig `yaml:"brain"`   // "builtin" (default) or {openai: {...}}
	Intents []Intent    `yaml:"intents"` // for the builtin classifier
}

// BrainConfig chooses the brain. In YAML it is either the scalar "builtin" or
// "openai", or a mapping {openai: {base_url, model, api_key_env, timeout,
// retries}}. An empty Kind means builtin.
type BrainConfig struct {
	Kind   string
	OpenAI *OpenAIConfig
}

// OpenAIConfig configures an OpenAI-compatible chat completions server.
type OpenAIConfig struct {
	// BaseURL is the server's root, e.g. http://127.0.0.1:11434; the brain
	// POSTs to BaseURL + "/v1/chat/completions" (a BaseURL ending in /v1
	// is accepted too). Required.
	BaseURL string `yaml:"base_url"`
	// Model is the model name sent with each request. Required.
	Model string `yaml:"model"`
	// APIKeyEnv names the environment variable holding the key, sent as
	// "Authorization: Bearer <key>". Empty: no key is sent.
	APIKeyEnv string `yaml:"api_key_env"`
	// Timeout bounds each attempt. Zero means TimeoutDefault (5s).
	Timeout time.Duration `yaml:"timeout"`
	// Retries is the number of extra attempts after the first, on 5xx, 429,
	// timeouts and connection errors; at most RetriesMax. Omitted in YAML it
	// is RetriesDefault (1); zero in Go means none.
	Retries int `yaml:"retries"`
}

// Intent is one thing customers ask, learned from example phrases.
type Intent struct {
	Name     string   `yaml:"name"`
	Examples []string `yaml:"examples"` // example phrases
	Answer   string   `yaml:"answer"`   // optional canned answer; when empty the answer comes from the knowledge base
}

var openAIKeys = map[string]bool{"base_url": true, "model": true, "api_key_env": true, "timeout": true, "retries": true}

// UnmarshalYAML accepts a scalar kind or a mapping {openai: {...}}.
func (b *BrainConfig) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*b = BrainConfig{Kind: n.Value}
		if n.Value == KindOpenAI {
			b.OpenAI = &OpenAIConfig{Retries: RetriesDefault}
		}
		return nil
	case yaml.MappingNode:
		if len(n.Content) != 2 {
			return fmt.Errorf("line %d: ai.brain: want one key (openai), have %d", n.Line, len(n.Content)/2)
		}
		key, val := n.Content[0], n.Content[1]
		if key.Value != KindOpenAI {
			return fmt.Errorf("line %d: ai.brain: unknown brain %q (want builtin or openai)", key.Line, key.Value)
		}
		if val.Kind != yaml.MappingNode {
			return fmt.Errorf("line %d: ai.brain.openai: want a mapping", val.Line)
		}
		cfg := OpenAIConfig{Retries: RetriesDefault}
		for i := 0; i < len(val.Content); i += 2 {
			if k := val.Content[i]; !openAIKeys[k.Value] {
				return fmt.Errorf("line %d: ai.brain.openai: unknown field %q", k.Line, k.Value)
			}
		}
		if err := val.Decode(&cfg); err != nil {
			return fmt.Errorf("ai.brain.openai: %w", err)
		}
		*b = BrainConfig{Kind: KindOpenAI, OpenAI: &cfg}
		return nil
	default:
		return fmt.Errorf("line %d: ai.brain: want builtin, openai or {openai: {...}}", n.Line)
	}
}

// MarshalYAML writes the forms UnmarshalYAML reads.
func (b BrainConfig) MarshalYAML() (any, error) {
	if b.Kind == KindOpenAI && b.OpenAI != nil {
		return map[string]*OpenAIConfig{KindOpenAI: b.OpenAI}, nil
	}
	if b.Kind == "" {
		return KindBuiltin, nil
	}
	return b.Kind, nil
}

// Validate reports every problem of the configuration in one error.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("ai: "+format, args...)) }
	switch c.Brain.Kind {
	case "", KindBuiltin:
	case KindOpenAI:
		if c.Brain.OpenAI == nil {
			bad("brain openai: base_url and model are required")
		} else {
			errs = append(errs, c.Brain.OpenAI.validate())
		}
	default:
		bad("brain: unknown kind %q (want builtin or openai)", c.Brain.Kind)
	}
	errs = append(errs, validateIntents(c.Intents))
	return errors.Join(errs...)
}

func (o *OpenAIConfig) validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("ai: brain openai: "+format, args...))
	}
	if o.BaseURL == "" {
		bad("base_url is required")
	} else if u, err := url.Parse(o.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("base_url %q: want an http or https URL", o.BaseURL)
	}
	if strings.TrimSpace(o.Model) == "" {
		bad("model is required")
	}
	if o.Timeout < 0 || o.Timeout > TimeoutMax {
		bad("timeout %v: want between 0 (default %v) and %v", o.Timeout, TimeoutDefault, TimeoutMax)
	}
	if o.Retries < 0 || o.Retries > RetriesMax {
		bad("retries %d: want between 0 and %d", o.Retries, RetriesMax)
	}
	return errors.Join(errs...)
}

func validateIntents(intents []Intent) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("ai: "+format, args...)) }
	if len(intents) > IntentsMax {
		bad("%d intents, more than %d (IntentsMax)", len(intents), IntentsMax)
	}
	seen := make(map[string]bool, len(intents))
	for i, in := range intents {
		name := in.Name
		switch {
		case strings.TrimSpace(name) == "":
			name = fmt.Sprintf("#%d", i+1)
			bad("intent %s: empty name", name)
		case len(name) > IntentNameBytesMax:
			bad("intent %q: name longer than %d bytes", name, IntentNameBytesMax)
		case seen[name]:
			bad("intent %q: duplicate name", name)
		}
		seen[name] = true
		if len(in.Examples) == 0 {
			bad("intent %s: no examples", quoteName(name))
		}
		if len(in.Examples) > ExamplesPerIntentMax {
			bad("intent %s: %d examples, more than %d (ExamplesPerIntentMax)", quoteName(name), len(in.Examples), ExamplesPerIntentMax)
		}
		for j, ex := range in.Examples {
			if len(ex) > ExampleBytesMax {
				bad("intent %s: example %d longer than %d bytes", quoteName(name), j+1, ExampleBytesMax)
			} else if len(tokens(nil, ex, QueryTokensMax)) == 0 {
				bad("intent %s: example %d %q has no words to learn from", quoteName(name), j+1, ex)
			}
		}
		if len(in.Answer) > AnswerBytesMax {
			bad("intent %s: answer longer than %d bytes", quoteName(name), AnswerBytesMax)
		}
	}
	return errors.Join(errs...)
}

func quoteName(name string) string {
	if strings.HasPrefix(name, "#") {
		return name
	}
	return fmt.Sprintf("%q", name)
}
