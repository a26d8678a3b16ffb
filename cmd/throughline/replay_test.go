package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/cluster"
	"github.com/throughline/throughline/node"
	"github.com/throughline/throughline/persistence"
	"github.com/throughline/throughline/replay"
)

var quietLog = slog.New(slog.DiscardHandler)

// A journal recorded by a real node running the built-in demo, replayed
// with a config whose vip-fast-track rule routes to general and whose bot
// refuses the reset_password topic, reports exactly those two changes; the
// old side (the default, the demo) reproduces the journal; and the data
// dir is byte-for-byte what the node left.
func TestReplayDemoJournalWithAChangedRule(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	recordDemoJournal(t, data)

	before := hashTree(t, data)
	newConfig := writeDemoLikeConfig(t, dir)
	args := replayArgs{config: newConfig, data: data, customers: 100, samples: 5, json: true}
	var out bytes.Buffer
	if err := runReplay(context.Background(), args, time.Now(), quietLog, &out); err != nil {
		t.Fatal(err)
	}
	var rep replay.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	// c-vip: its profile patch and login.failed; c-cart: its cart; c-chat:
	// its message and the bot's turn.
	if rep.Customers != 3 || rep.Inputs != 5 || rep.Changed != 2 || rep.Mismatched != 0 || rep.Truncated {
		t.Errorf("report %s", out.String())
	}
	want := []struct {
		kind, what, customer string
	}{
		{replay.KindRoute, "vip → general", "c-vip"},
		{replay.KindHandoverGained, "blocked_topic → general", "c-chat"},
	}
	if len(rep.Changes) != len(want) {
		t.Fatalf("changes %s, want %v", out.String(), want)
	}
	for i, w := range want {
		c := rep.Changes[i]
		if c.Kind != w.kind || c.What != w.what || c.Inputs != 1 || c.Customers != 1 ||
			len(c.Samples) != 1 || c.Samples[0].Customer != w.customer {
			t.Errorf("change %d: %+v, want %v", i, c, w)
		}
	}

	out.Reset()
	args.json = false
	if err := runReplay(context.Background(), args, time.Now(), quietLog, &out); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Replayed 3 customers (the whole journal): 5 inputs, 2 would be decided differently.",
		"## Routes to other queues", "| vip → general | 1 | 1 | c-vip@", "## Hand-overs gained"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("markdown lacks %q:\n%s", s, out.String())
		}
	}
	// The window: nothing of this journal is older than an hour, nothing is
	// younger than a second in an hour's time.
	args.since, args.json = time.Second, true
	out.Reset()
	if err := runReplay(context.Background(), args, time.Now().Add(time.Hour), quietLog, &out); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep.Inputs != 0 || rep.Customers != 3 || len(rep.Changes) != 0 {
		t.Errorf("a window after the journal: %s (%v)", out.String(), err)
	}
	// The customer limit.
	args.since, args.customers = 0, 2
	out.Reset()
	if err := runReplay(context.Background(), args, time.Now(), quietLog, &out); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep.Customers != 2 || !rep.Truncated {
		t.Errorf("--customers 2: %s (%v)", out.String(), err)
	}

	after := hashTree(t, data)
	if !mapsEqual(before, after) {
		t.Fatalf("the data dir changed:\nbefore %v\nafter  %v", before, after)
	}
}

// recordDemoJournal runs a node with the built-in demo on data, sends
// scripted events and stops it. While it runs, a replay refuses the dir.
func recordDemoJournal(t *testing.T, data string) {
	t.Helper()
	cfg := node.Default()
	cfg.Node.DataDir, cfg.Node.HTTP, cfg.Node.Partitions = data, "127.0.0.1:0", 4
	cfg.Logger = quietLog
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := n.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}()
	base := "http://" + n.Addr() + "/v1"
	call(t, "PATCH", base+"/customers/c-vip/profile", "gw-secret", `{"tier":"vip"}`)
	call(t, "POST", base+"/events", "gw-secret", `{"id":"v-1","customer":"c-vip","type":"login.failed"}`)
	call(t, "POST", base+"/events", "gw-secret", `{"id":"k-1","customer":"c-cart","type":"cart.abandoned"}`)
	call(t, "POST", base+"/events", "gw-secret", `{"id":"m-1","customer":"c-chat","type":"message.received","text":"I forgot my password"}`)
	// The bot answers after the ack: wait for its turn to be stored.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(call(t, "GET", base+"/customers/c-chat/timeline", "sup-secret", ""), `"ai.replied"`) {
		if time.Now().After(deadline) {
			t.Fatal("the bot's turn was not stored within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	args := replayArgs{config: writeDemoLikeConfig(t, t.TempDir()), data: data, customers: 1, samples: 1}
	err = runReplay(context.Background(), args, time.Now(), quietLog, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "the data dir is in use; stop the server or copy it") {
		t.Fatalf("a replay beside the running node: %v", err)
	}
}

func call(t *testing.T, method, url, token, body string) string {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	return string(b)
}

// writeDemoLikeConfig writes the demo's queues, bot, rules and governance
// as a config file, with two changes: vip-fast-track routes to general,
// and the bot never answers reset_password.
func writeDemoLikeConfig(t *testing.T, dir string) string {
	t.Helper()
	kb := filepath.Join(dir, "kb")
	if err := os.MkdirAll(kb, 0o755); err != nil {
		t.Fatal(err)
	}
	articles, _ := fs.Glob(node.DemoFS, "demo/kb/*.md")
	for _, name := range articles {
		b, _ := fs.ReadFile(node.DemoFS, name)
		if err := os.WriteFile(filepath.Join(kb, filepath.Base(name)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	intents, err := fs.ReadFile(node.DemoFS, "demo/intents.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rules := strings.Replace(node.DemoRules, "queue: vip,", "queue: general,", 1)
	if rules == node.DemoRules {
		t.Fatal("the demo's vip-fast-track no longer routes to vip: update this test")
	}
	config := fmt.Sprintf(`queues:
  - {name: general, offer_timeout: 20s, callback_after: 2m}
  - {name: billing, skills: [billing], offer_timeout: 20s}
  - {name: vip, skills: [vip], offer_timeout: 10s, sticky_wait: 30s}
agents:
  - {id: alice, skills: [billing, vip], capacity: 2}
ai:
  brain: builtin
  escalate_below: 0.55
  default_queue: general
  blocked_topics: [reset_password]
  intents:
%s
knowledge: %s
rules:
%s
governance:
%s
`, indent(string(intents)), kb, rules, indent(node.DemoGovernance))
	path := filepath.Join(dir, "new.yaml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n    ")
}

// hashTree is the SHA-256 of every file under dir, by relative path.
func hashTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		sums[rel] = fmt.Sprintf("%x", sha256.Sum256(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) == 0 {
		t.Fatal("the data dir holds no file")
	}
	return sums
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// A cluster node's data dir and a dir that is no store are refused with
// errors that say so, and bad flags are listed together.
func TestReplayRefusals(t *testing.T) {
	dir := t.TempDir()
	config := writeDemoLikeConfig(t, dir)
	if err := os.WriteFile(filepath.Join(dir, cluster.DataDirFile), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := replayArgs{config: config, data: dir, customers: 1, samples: 1}
	err := runReplay(context.Background(), args, time.Now(), quietLog, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "is a cluster node's data dir") {
		t.Errorf("a cluster node's dir: %v", err)
	}
	args.data = t.TempDir()
	err = runReplay(context.Background(), args, time.Now(), quietLog, io.Discard)
	if !errors.Is(err, persistence.ErrNotDataDir) {
		t.Errorf("an empty dir: %v", err)
	}
	args.oldConfig = filepath.Join(dir, "missing.yaml")
	if err := runReplay(context.Background(), args, time.Now(), quietLog, io.Discard); err == nil || !strings.Contains(err.Error(), "--old-config") {
		t.Errorf("a missing old config: %v", err)
	}
	bad := replayArgs{since: -time.Hour, customers: 0, samples: 1000}
	err = bad.validate()
	for _, s := range []string{"--config", "--data", "--since", "--customers", "--samples"} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("flags error %v lacks %s", err, s)
		}
	}
}
