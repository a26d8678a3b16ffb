package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// An idle run against the echo: every connection says hello and stays
// open until the second reading, which the report divides by them.
func TestRunIdleAgainstEcho(t *testing.T) {
	cfg := DefaultIdle()
	cfg.Target, cfg.Token = echoTarget(t, ""), "t"
	cfg.Connections, cfg.Settle = 40, 50*time.Millisecond
	r, err := RunIdle(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Connections != 40 || r.RSSPerConnection == nil || r.HeapPerConnection == nil ||
		r.Before.RSSBytes == nil || r.After.RSSBytes == nil || len(r.Bars) != 1 {
		t.Fatalf("report %+v", r)
	}
	if want := float64(*r.After.RSSBytes-*r.Before.RSSBytes) / 40; *r.RSSPerConnection != want {
		t.Errorf("RSS per connection %v, want %v", *r.RSSPerConnection, want)
	}
	var b bytes.Buffer
	if err := r.Markdown(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"40 idle channel WebSockets", "| server RSS |", "server RSS per idle channel WebSocket"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

func TestIdleValidateListsEveryProblem(t *testing.T) {
	err := IdleConfig{Target: "ftp:/x", Connections: 0, Settle: -time.Second}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"target", "token", "connections 0", "settle -1s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
}
