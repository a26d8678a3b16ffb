package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/throughline/throughline/ai"
	"gopkg.in/yaml.v3"
)

// demoDir holds the demo bot's intents and knowledge base.
const demoDir = "../node/demo"

func TestJourneyQuestionsAreAnsweredByTheDemoBot(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(demoDir, "intents.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg ai.Config
	if err := yaml.Unmarshal(data, &cfg.Intents); err != nil {
		t.Fatal(err)
	}
	kb, err := ai.LoadKnowledgeDir(filepath.Join(demoDir, "kb"))
	if err != nil {
		t.Fatal(err)
	}
	brain, err := ai.New(cfg, kb)
	if err != nil {
		t.Fatal(err)
	}
	intents := map[string]bool{}
	for _, q := range journeyQuestions {
		if enc, _ := json.Marshal(q); string(enc) != `"`+q+`"` {
			t.Errorf("%q needs escaping in JSON: the encoder appends it as it is", q)
		}
		r, err := brain.Reply(t.Context(), ai.Request{Customer: "c", Conversation: "v", Text: q})
		if err != nil {
			t.Fatal(err)
		}
		if r.Intent == "" || r.Confidence < JourneyEscalateBelow || r.Sentiment < 0 || len(r.Articles) == 0 {
			t.Errorf("%q: intent %q, confidence %.2f, sentiment %.2f, articles %v: want an answer from the knowledge base over %v, not negative",
				q, r.Intent, r.Confidence, r.Sentiment, r.Articles, JourneyEscalateBelow)
		}
		intents[r.Intent] = true
	}
	if len(intents) < 7 {
		t.Errorf("the questions cover intents %v: want the knowledge base's seven topics", intents)
	}
}

func TestJourneyConfigValidateListsEveryProblem(t *testing.T) {
	cfg := DefaultJourney()
	cfg.Target = "ftp://x"
	cfg.Rate = 0
	cfg.Customers = 2
	cfg.Handover = ""
	err := cfg.Validate()
	for _, want := range []string{"target", "rate 0", "customers 2", "handover"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want a problem naming %q", err, want)
		}
	}
}

// startDemoServer builds the binary and starts it with the demo bot, the
// way `throughline bench journey` does; it returns the base URL.
func startDemoServer(t *testing.T) string {
	t.Helper()
	intents, err := os.ReadFile(filepath.Join(demoDir, "intents.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	kb, err := filepath.Abs(filepath.Join(demoDir, "kb"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("auth:\n  tokens:\n    - {token: gw, role: channel}\n")
	fmt.Fprintf(&b, "ai:\n  brain: builtin\n  escalate_below: %v\n  default_queue: general\n  intents:\n", JourneyEscalateBelow)
	for _, line := range strings.Split(strings.TrimSpace(string(intents)), "\n") {
		b.WriteString("    " + line + "\n")
	}
	fmt.Fprintf(&b, "knowledge: %q\nqueues: [{name: general}]\n", kb)
	return startTestServer(t, b.String())
}

// startTestServer builds the binary and starts it on a free port with a
// fresh data directory and the given sections; it returns the base URL.
func startTestServer(t *testing.T, sections string) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "throughline")
	build := exec.Command("go", "build", "-o", bin, "../cmd/throughline")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	config := fmt.Sprintf("node: {data_dir: %q, http: %q}\n", filepath.Join(dir, "data"), addr) + sections
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "server.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logFile.Close(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("server log:\n%s", log)
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		select {
		case <-exited:
			t.Fatal("the server exited at start")
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the server was not ready after 30 s")
		}
	}
}

func TestRunJourneyAgainstTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	cfg := DefaultJourney()
	cfg.Target = startDemoServer(t)
	cfg.Token = "gw"
	cfg.Rate, cfg.Connections, cfg.Customers = 100, 4, 40
	cfg.Warmup, cfg.Duration = 500*time.Millisecond, 1500*time.Millisecond
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	r, err := RunJourney(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Turns == 0 || r.Acked != r.Turns || r.Answered != r.Turns || r.HandedOver != 0 {
		t.Errorf("turns %d, acked %d, answered %d, handed over %d: want every turn acked and answered",
			r.Turns, r.Acked, r.Answered, r.HandedOver)
	}
	if r.Failed != 0 || r.MissingAcks != 0 || r.MissingReplies != 0 || r.Unmatched != 0 || r.Malformed != 0 {
		t.Errorf("failed %d, missing acks %d, missing replies %d, unmatched %d, malformed %d: want none; warnings %q",
			r.Failed, r.MissingAcks, r.MissingReplies, r.Unmatched, r.Malformed, r.Warnings)
	}
	for name, l := range map[string]Latency{"turn": r.TurnLatency, "ack": r.AckLatency} {
		if l.Count == 0 || l.P50Us <= 0 || l.P50Us > l.P99Us || l.P99Us > l.MaxUs {
			t.Errorf("%s latency %+v: want a non-empty, ordered distribution", name, l)
		}
	}
	if r.TurnLatency.P50Us < r.AckLatency.P50Us {
		t.Errorf("turn p50 %d µs under ack p50 %d µs: the reply comes after the ack", r.TurnLatency.P50Us, r.AckLatency.P50Us)
	}
	if r.TurnsPerSecond <= 0 {
		t.Errorf("turns/s %v", r.TurnsPerSecond)
	}
	if r.Brain == nil || r.Brain.Count == 0 || r.Brain.P50UsLE <= 0 || r.Brain.P99UsLE < r.Brain.P50UsLE {
		t.Errorf("brain %+v, warnings %q: want the measured period's turns read from the server", r.Brain, r.Warnings)
	}
	var md strings.Builder
	if err := r.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| bot turn p50 | < 2.00 ms |", "| bot turn p99 | < 5.00 ms |", "| brain p99 (builtin) | < 1.00 ms |", "p50 / p99 / p999 / max"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md.String())
		}
	}
}
