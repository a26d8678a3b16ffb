package bench

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultIsValid(t *testing.T) {
	cfg := Default()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	if cfg.Connections != 16 || cfg.Customers != 1000 || cfg.Duration != 60*time.Second ||
		cfg.Warmup != 5*time.Second || cfg.Window != 64 || len(cfg.DeeperWindows) != 1 || cfg.DeeperWindows[0] != 256 || cfg.EventBytes != 200 || !cfg.Ceilings {
		t.Fatalf("Default() = %+v, not the documented defaults", cfg)
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	cfg := Config{
		Target:      "ftp://example.com",
		Token:       "two words",
		Connections: ConnectionsMax + 1,
		Customers:   -1,
		Duration:    0,
		Warmup:      -time.Second,
		Rate:        -5,
		Window:      WindowMax + 1,
		BatchSize:   BatchSizeMax + 1,
		EventBytes:  0,
	}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate accepted a bad config")
	}
	for _, want := range []string{"target", "token", "connections", "customers", "duration", "warmup", "rate", "window", "batch size", "event bytes"} {
		if !strings.Contains(err.Error(), "bench: "+want) {
			t.Errorf("Validate error lacks %q:\n%v", want, err)
		}
	}
}

func TestValidateRelations(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"fewer customers than connections", func(c *Config) { c.Connections, c.Customers = 10, 5 }, "customers 5"},
		{"window under batch", func(c *Config) { c.Window, c.BatchSize = 100, 500 }, "window 100"},
		{"frame too large", func(c *Config) { c.BatchSize, c.EventBytes = 1000, EventBytesMax }, "a frame must stay under"},
		{"duration over a day", func(c *Config) { c.Duration = 25 * time.Hour }, "duration"},
		{"target without host", func(c *Config) { c.Target = "http://" }, "no host"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Default()
			tc.change(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

func TestTargetURLs(t *testing.T) {
	cases := []struct{ target, ws, metrics string }{
		{"http://127.0.0.1:8080", "ws://127.0.0.1:8080/v1/channels/ws", "http://127.0.0.1:8080/metrics"},
		{"http://127.0.0.1:8080/", "ws://127.0.0.1:8080/v1/channels/ws", "http://127.0.0.1:8080/metrics"},
		{"https://tl.example.com/edge/", "wss://tl.example.com/edge/v1/channels/ws", "https://tl.example.com/edge/metrics"},
	}
	for _, tc := range cases {
		ws, metrics, err := targetURLs(tc.target)
		if err != nil || ws != tc.ws || metrics != tc.metrics {
			t.Errorf("targetURLs(%q) = %q, %q, %v; want %q, %q", tc.target, ws, metrics, err, tc.ws, tc.metrics)
		}
	}
}

func TestRunRequiresTarget(t *testing.T) {
	_, err := Run(t.Context(), Default())
	if err == nil || !strings.Contains(err.Error(), "target") {
		t.Fatalf("Run without a target = %v, want a target error", err)
	}
}
