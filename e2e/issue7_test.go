package e2e

// Privacy, audit and next best action through the real binary (PROTOCOL
// sections 3 and 5): a long export within bounded memory, an erase that
// leaves no key naming the customer, an audit entry for every kind of
// action, and offers ranked and sent.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// rssBytes is the server process's resident memory.
func (s *server) rssBytes() int64 {
	s.t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		s.t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	s.t.Fatal("no VmRSS")
	return 0
}

func TestExportOfALongHistoryIsStreamed(t *testing.T) {
	s := startServer(t, serverOptions{})
	ws := dialWS(t, s, tokChannel)
	const n = 10_000
	text := strings.Repeat("x", 400)
	for b := range n / 1000 {
		es := make([]event, 1000)
		for i := range es {
			es[i] = event{ID: fmt.Sprintf("e-%d-%d", b, i), Customer: "long-1", Text: text,
				Identity: map[string]string{"email": "long@example.com"}}
		}
		ws.mustSend(batchFrame(fmt.Sprintf("b-%d", b), es))
		if f := ws.expect("acks"); f.ID != fmt.Sprintf("b-%d", b) {
			t.Fatalf("acks of %s", f.ID)
		}
	}
	s.call("PATCH", customerPath("long-1")+"/profile", tokChannel, map[string]any{"tier": "vip"}, nil).wantStatus(t, 200)
	before := s.rssBytes()
	r := s.call("GET", customerPath("long-1")+"/export", tokAdmin, nil, nil).wantStatus(t, 200)
	grown := s.rssBytes() - before
	var out struct {
		Customer   string              `json:"customer"`
		Identities map[string][]string `json:"identities"`
		Profile    map[string]any      `json:"profile"`
		Events     []storedEvent       `json:"events"`
	}
	r.decode(t, &out)
	if out.Customer != "long-1" || out.Profile["tier"] != "vip" || len(out.Identities["email"]) != 1 {
		t.Fatalf("export head: %s %v %v", out.Customer, out.Profile, out.Identities)
	}
	if len(out.Events) < n+1 {
		t.Fatalf("%d events exported, want at least %d", len(out.Events), n+1)
	}
	checkGapless(t, "long-1", out.Events)
	// The export is about 5 MB of JSON; holding it (and its decoded events)
	// at once would show several times that.
	if grown > 48<<20 {
		t.Errorf("server RSS grew by %d MB during the export", grown>>20)
	}
	s.call("GET", customerPath("long-1")+"/export", tokSupervisor, nil, nil).wantError(t, 403, "forbidden")
	s.call("GET", customerPath("nobody")+"/export", tokAdmin, nil, nil).wantError(t, 404, "not_found")
}

// After an erase, no key or value of the store names the customer, its
// phone or its email, but for the tombstones (the customer's id with hashed
// event ids, so a late retry is refused) and the audit entry of the erase.
func TestEraseLeavesNothingThatNamesTheCustomer(t *testing.T) {
	s := startServer(t, serverOptions{sections: privacySections + "broadcasts: {rate: 1000}\n"})
	const phone, email = "+15559871234", "erase-me@example.com"
	a := s.postEvent(event{ID: "pay-1", Identity: map[string]string{"phone": phone, "email": email}, Type: "payment.failed", Channel: "sms"})
	s.postEvent(event{ID: "msg-2", Customer: a.Customer, Text: "where is my refund"})
	s.call("PATCH", customerPath(a.Customer)+"/profile", tokChannel, map[string]any{"name": "Erin Erase"}, nil).wantStatus(t, 200)
	id := s.broadcast(map[string]any{"segment": map[string]any{"event": "payment.failed", "within": "1h"}, "message": map[string]any{"text": "We know."}})
	s.waitBroadcast(id, "done")
	eventually(t, 5*time.Second, "the customer queued", func() bool { return billingWaiting(s) == 1 })

	s.call("DELETE", customerPath(a.Customer), tokAdmin, nil, nil).wantStatus(t, 204)
	s.call("GET", customerPath(a.Customer), tokSupervisor, nil, nil).wantError(t, 404, "not_found")
	if n := billingWaiting(s); n != 0 {
		t.Fatalf("billing lists %d after the erase", n)
	}
	pause(1500 * time.Millisecond) // past its callback and its timer: nothing of it may fire
	s.call("GET", customerPath(a.Customer), tokSupervisor, nil, nil).wantError(t, 404, "not_found")
	s.call("POST", "/v1/events", tokChannel, event{ID: "pay-1", Customer: a.Customer, Type: "payment.failed"}, nil).wantError(t, 409, "conflict")
	s.stop()

	db, err := pebble.Open(s.dataDir, &pebble.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	needles := [][]byte{[]byte(a.Customer), []byte(phone), []byte(email), []byte("Erin Erase"), []byte("refund")}
	keys := 0
	for ok := it.First(); ok; ok = it.Next() {
		keys++
		v, _ := it.ValueAndErr()
		k := it.Key()
		allowed := len(k) > 2 && (k[2] == 't' || (k[2] == 'r' && bytes.Contains(k, []byte("audit"))))
		for i, n := range needles {
			if i == 0 && allowed {
				continue // a tombstone or the audit entry names the id, nothing else
			}
			if bytes.Contains(k, n) || bytes.Contains(v, n) {
				t.Errorf("key %q (value %.80q) still names %q", it.Key(), v, n)
			}
		}
	}
	if keys == 0 {
		t.Fatal("the store is empty: the scan proves nothing")
	}
	it.Close()
	db.Close()
	// A provider's late retry names the phone, not the id: it reaches a new
	// customer, and is refused all the same.
	s = startServer(t, serverOptions{dataDir: s.dataDir, sections: privacySections})
	s.call("POST", "/v1/events", tokChannel, event{ID: "msg-2", Identity: map[string]string{"phone": phone}, Text: "where is my refund"}, nil).wantError(t, 409, "conflict")
}

// Every export, erase, broadcast, resolve, cancel, supervisor profile patch
// and refused admin request is in the audit log, by token name, newest
// last, never the token itself.
func TestAuditListsEveryAction(t *testing.T) {
	s := startServer(t, serverOptions{sections: broadcastSections, tokens: []string{"{token: boss-secret, role: supervisor, name: boss}"}})
	c := s.postEvent(event{ID: "pay-1", Identity: map[string]string{"phone": "+15550001234"}, Type: "payment.attempted", Channel: "sms"}).Customer
	s.call("PATCH", customerPath(c)+"/profile", "boss-secret", map[string]any{"tier": "vip"}, nil).wantStatus(t, 200)
	s.call("PATCH", customerPath(c)+"/profile", tokChannel, map[string]any{"tier": "gold"}, nil).wantStatus(t, 200) // a channel's patch is not audited
	s.call("GET", customerPath(c)+"/export", tokAdmin, nil, nil).wantStatus(t, 200)
	body := outageBroadcast()
	id := s.call("POST", "/v1/broadcasts", "boss-secret", body, nil).wantStatus(t, 202)
	var created struct{ ID string }
	id.decode(t, &created)
	s.waitBroadcast(created.ID, "done")
	s.call("POST", "/v1/broadcasts/"+created.ID+"/resolve", "boss-secret", map[string]any{"message": map[string]any{"text": "fixed"}}, nil).wantStatus(t, 202)
	s.call("DELETE", "/v1/broadcasts/"+created.ID, "boss-secret", nil, nil).wantStatus(t, 204)
	s.call("DELETE", customerPath(c), "boss-secret", nil, nil).wantError(t, 403, "forbidden")
	s.call("DELETE", customerPath(c), tokAdmin, nil, nil).wantStatus(t, 204)

	var audit struct {
		Entries []struct{ Time, Token, Role, Action, Target, Result string } `json:"entries"`
	}
	r := s.call("GET", "/v1/audit?limit=100", tokAdmin, nil, nil).wantStatus(t, 200)
	if bytes.Contains(r.body, []byte("secret")) {
		t.Fatalf("the audit log shows a token: %s", r.body)
	}
	r.decode(t, &audit)
	var got []string
	for _, e := range audit.Entries {
		got = append(got, e.Action+":"+e.Result)
		if e.Time == "" || e.Token == "" || e.Role == "" {
			t.Errorf("entry without time, token or role: %+v", e)
		}
		if e.Role == "supervisor" && e.Token != "boss" {
			t.Errorf("the supervisor's entry names %q, not its token's name", e.Token)
		}
	}
	want := []string{"profile.patch:ok", "export:ok", "broadcast:ok", "broadcast.resolve:ok", "broadcast.cancel:ok", "refused:forbidden", "erase:ok"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("audit actions\n got %v\nwant %v", got, want)
	}
	s.call("GET", "/v1/audit", "boss-secret", nil, nil).wantError(t, 403, "forbidden")
}

const offerSections = `offers:
  - id: payment-plan
    when: "customer.count('payment.failed', duration('24h')) > 0"
    text: "Split your payment into three?"
    priority: 50
    cap: {max: 1, per: 24h}
  - id: gold-upgrade
    when: "has(customer.profile.tier) && customer.profile.tier == 'vip'"
    text: "Move to Gold?"
    priority: 30
    score: "customer.count('purchase.completed', duration('720h')) * 5"
  - id: paperless
    when: "false"
    text: "Go paperless"
    priority: 10
rules:
  - id: billing-page-offer
    when: "event.type == 'page.viewed'"
    do: [{next_best_action: {}}]
`

func TestNextBestActionRanksExplainsAndSends(t *testing.T) {
	s := startServer(t, serverOptions{sections: offerSections})
	phone := map[string]string{"phone": "+15550004321"}
	c := s.postEvent(event{ID: "fail-1", Identity: phone, Type: "payment.failed", Channel: "sms"}).Customer
	s.call("PATCH", customerPath(c)+"/profile", tokChannel, map[string]any{"tier": "vip"}, nil).wantStatus(t, 200)
	for i := range 6 {
		s.postEvent(event{ID: fmt.Sprintf("buy-%d", i), Customer: c, Type: "purchase.completed"})
	}
	var nba struct {
		Actions []struct {
			Offer   string   `json:"offer"`
			Score   float64  `json:"score"`
			Text    string   `json:"text"`
			Channel string   `json:"channel"`
			Why     []string `json:"why"`
		} `json:"actions"`
		Excluded []struct{ Offer, Reason string } `json:"excluded"`
	}
	s.call("GET", customerPath(c)+"/next-best-action", tokSupervisor, nil, nil).wantStatus(t, 200).decode(t, &nba)
	if len(nba.Actions) != 2 || nba.Actions[0].Offer != "gold-upgrade" || nba.Actions[0].Score != 60 || nba.Actions[1].Offer != "payment-plan" {
		t.Fatalf("actions %+v", nba.Actions)
	}
	if a := nba.Actions[0]; a.Channel != "sms" || a.Text != "Move to Gold?" || len(a.Why) == 0 {
		t.Fatalf("best action %+v", a)
	}
	if len(nba.Excluded) != 1 || nba.Excluded[0].Offer != "paperless" || nba.Excluded[0].Reason != "not_eligible" {
		t.Fatalf("excluded %+v", nba.Excluded)
	}
	// The rule action sends the best one through governance.
	s.postEvent(event{ID: "view-1", Customer: c, Type: "page.viewed"})
	sent := eventsOf(s.timeline(c, 100), "proactive.sent")
	if len(sent) != 1 || dataOf(t, sent[0])["offer"] != "gold-upgrade" {
		raw, _ := json.Marshal(s.timeline(c, 100))
		t.Fatalf("proactive.sent %+v\n%s", sent, raw)
	}
	s.call("GET", customerPath("nobody")+"/next-best-action", tokSupervisor, nil, nil).wantError(t, 404, "not_found")
}
