package journey_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/golden from the scripts")

// Golden tests: a conversation script in (testdata/golden/NAME.script), the
// events out (NAME.golden). A script is one input a line, after a `policy`
// line naming one of goldenPolicies:
//
//	# a comment
//	policy bot
//	<offset from t0> in {"channel":"sms","text":"..."}   a client event (fields of an event; id and customer filled in)
//	<offset> profile {"tier":"vip"}                       a profile patch
//	<offset> bot {"text":"...","confidence":0.8,...}      answers the latest bot request (BotResult in snake case)
//	<offset> receipt delivered|accepted|failed <seq> [reason]  a receipt for the outbound of message.sent <seq>
//	<offset> due <kind> <ref|*>                           pending due work of the kind (* : the earliest); with none
//	                                                      pending, the latest added again (a repeated due); with
//	                                                      @offset, the key of that time (a stale one)
//
// The golden file echoes each input, then one line per event: seq, type,
// actor, channel, text (quoted, when any) and data; then the effects,
// indented: due work added (+due) and done (-due), outbounds and bot
// requests, or the rejection. Offsets are from t0.
func TestGolden(t *testing.T) {
	scripts, err := filepath.Glob(filepath.Join("testdata", "golden", "*.script"))
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, script := range scripts {
		name := strings.TrimSuffix(filepath.Base(script), ".script")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(script)
			if err != nil {
				t.Fatal(err)
			}
			got := runScript(t, string(src))
			path := strings.TrimSuffix(script, ".script") + ".golden"
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the script's run (go test ./journey/ -run TestGolden -update, then review the diff):\n%s",
					path, lineDiff(string(want), string(got)))
			}
		})
	}
}

func goldenPolicies(t *testing.T) map[string]journey.Policy {
	rules := rulesPolicy(t, &journey.Governance{
		FrequencyCap: &journey.FrequencyCap{Max: 2, Per: 24 * time.Hour},
		QuietHours:   &journey.QuietHours{From: "21:00", To: "08:00"},
	},
		routeRule("vip-fast-track", "event.type == 'message.received' && has(customer.profile.tier) && customer.profile.tier == 'vip'", "vip", 100, true),
		journey.RuleConfig{ID: "cart-nudge", When: cartAbandoned, After: 30 * time.Minute,
			Unless: "event.type == 'checkout.completed'",
			Do:     []journey.ActionConfig{{Send: &journey.SendAction{Text: "Still thinking it over? Your cart is saved."}}}},
		journey.RuleConfig{ID: "payment-trouble", When: "event.type == 'payment.failed'",
			Do: []journey.ActionConfig{{Tag: "payment-trouble"}, {Route: &journey.RouteAction{Queue: "payments", Priority: 20}}}},
	)
	return map[string]journey.Policy{"bot": botPolicy(), "rules": rules}
}

// botResultJSON is a BotResult as scripts write it.
type botResultJSON struct {
	InReplyTo  uint64   `json:"in_reply_to"`
	Text       string   `json:"text"`
	Intent     string   `json:"intent"`
	Confidence float64  `json:"confidence"`
	Sentiment  float64  `json:"sentiment"`
	Query      string   `json:"query"`
	Articles   []string `json:"articles"`
	Err        string   `json:"err"`
}

func runScript(t *testing.T, src string) []byte {
	t.Helper()
	var (
		out     bytes.Buffer
		r       *journeyRun
		pending []journey.Due // due work added and not yet done
		added   []journey.Due // every due work added, for repeats
		lastBot *journey.BotRequest
	)
	sc := bufio.NewScanner(strings.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("line %d %q: %s", n, line, fmt.Sprintf(format, args...))
		}
		if name, ok := strings.CutPrefix(line, "policy "); ok {
			p, ok := goldenPolicies(t)[name]
			if !ok {
				fail("unknown policy")
			}
			r = newRun(t, p)
			fmt.Fprintf(&out, "%s\n", line)
			continue
		}
		if r == nil {
			fail("no policy line first")
		}
		offset, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		at, err := time.ParseDuration(offset)
		if err != nil {
			fail("offset: %v", err)
		}
		r.at(at)
		verb, arg, _ := strings.Cut(rest, " ")
		arg = strings.TrimSpace(arg)
		var in journey.Input
		switch verb {
		case "in":
			var e journey.Event
			if err := json.Unmarshal([]byte(arg), &e); err != nil {
				fail("event: %v", err)
			}
			r.n++
			if e.ID == "" {
				e.ID = fmt.Sprintf("gw-%d", r.n)
			}
			if e.Type == "" && e.Text != "" {
				e.Type = journey.TypeMessageReceived
			}
			e.Customer = "c-42"
			in = &journey.Inbound{Event: e}
		case "profile":
			r.n++
			in = &journey.ProfilePatch{ID: fmt.Sprintf("p-%d", r.n), Patch: json.RawMessage(arg)}
		case "bot":
			var b botResultJSON
			if err := json.Unmarshal([]byte(arg), &b); err != nil {
				fail("bot result: %v", err)
			}
			if lastBot == nil {
				fail("no bot request to answer")
			}
			res := journey.BotResult{Conversation: lastBot.Conversation, InReplyTo: lastBot.InReplyTo, Text: b.Text,
				Intent: b.Intent, Confidence: b.Confidence, Sentiment: b.Sentiment, Query: b.Query, Articles: b.Articles,
				Brain: "builtin", Err: b.Err}
			if b.InReplyTo != 0 {
				res.InReplyTo = b.InReplyTo
			}
			in = &res
		case "receipt":
			f := strings.SplitN(arg, " ", 3)
			if len(f) < 2 {
				fail("want receipt <kind> <seq> [reason]")
			}
			seq, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				fail("seq: %v", err)
			}
			rc := &journey.Receipt{Kind: f[0], Outbound: journey.OutboundID("c-42", seq)}
			if len(f) == 3 {
				rc.Reason = f[2]
			}
			in = rc
		case "due":
			f := strings.Fields(arg)
			if len(f) < 2 {
				fail("want due <kind> <ref|*> [@offset]")
			}
			kind, ref := f[0], f[1]
			match := func(d journey.Due) bool { return d.Kind == kind && (ref == "*" || d.Ref == ref) }
			var due journey.Due
			if i := slices.IndexFunc(pending, match); i >= 0 {
				due = pending[i]
			} else if i := slices.IndexFunc(added, match); i >= 0 {
				due = added[i] // a repeat of work already done
			} else {
				fail("no due work %s %s in %+v", kind, ref, added)
			}
			if len(f) == 3 {
				at, err := time.ParseDuration(strings.TrimPrefix(f[2], "@"))
				if err != nil {
					fail("due time: %v", err)
				}
				due.At = t0.Add(at) // a stale key
			}
			in = &due
		default:
			fail("unknown input %q", verb)
		}
		fmt.Fprintf(&out, "\n== %s %s\n", offset, rest)
		d := r.step(in)
		for _, e := range d.Events {
			fmt.Fprintf(&out, "%d %s %s", e.Seq, e.Type, e.Actor)
			if e.Channel != "" {
				fmt.Fprintf(&out, " %s", e.Channel)
			}
			if e.Text != "" {
				fmt.Fprintf(&out, " %q", e.Text)
			}
			data := string(e.Data)
			if data == "" {
				data = "{}"
			}
			fmt.Fprintf(&out, " %s\n", data)
		}
		if d.Reject != nil {
			fmt.Fprintf(&out, "  reject %s\n", d.Reject.Code)
		}
		for _, due := range d.DueDone {
			fmt.Fprintf(&out, "  -due %s %s @%s\n", due.Kind, due.Ref, due.At.Sub(t0))
			pending = slices.DeleteFunc(pending, func(p journey.Due) bool { return p == due })
		}
		for _, due := range d.DueAdd {
			fmt.Fprintf(&out, "  +due %s %s @%s\n", due.Kind, due.Ref, due.At.Sub(t0))
			pending = append(pending, due)
			added = slices.Insert(added, 0, due)
		}
		slices.SortStableFunc(pending, func(a, b journey.Due) int { return a.At.Compare(b.At) })
		for _, o := range d.Outbounds {
			fmt.Fprintf(&out, "  outbound %s %s %s %q\n", o.ID, o.Channel, o.Actor, o.Text)
		}
		for i := range d.Bot {
			b := &d.Bot[i]
			fmt.Fprintf(&out, "  bot %s #%d %q history=%d\n", b.Conversation, b.InReplyTo, b.Text, len(b.History))
			lastBot = b
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// lineDiff lists the lines that differ, with their numbers.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d\n- %s\n+ %s\n", i+1, wl, gl)
		}
	}
	return b.String()
}
