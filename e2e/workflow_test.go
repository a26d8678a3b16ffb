package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// accountServer is a fake account look-up endpoint: /lookup answers the
// account of the customer in the posted context, /fail answers 500.
func accountServer(t *testing.T) (addr string, calls *atomic.Int64) {
	t.Helper()
	calls = &atomic.Int64{}
	mux := http.NewServeMux()
	mux.HandleFunc("/lookup", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		var body struct {
			Context struct{ Customer string } `json:"context"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Context.Customer == "" {
			http.Error(w, "no context", 400)
			return
		}
		fmt.Fprintf(w, `{"number":"ACC-%s","plan":"gold"}`, body.Context.Customer)
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "down", 500)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), calls
}

func workflowSections(t *testing.T, account string) string {
	return journeySections(t, "1h") + fmt.Sprintf(`  - id: verify-on-request
    when: "event.type == 'verify.requested'"
    do: [{workflow: verify}]
  - id: lookup-on-request
    when: "event.type == 'lookup.requested'"
    do: [{workflow: broken-lookup}]
workflows:
  - name: verify
    steps:
      - send_code: {digits: 6, attempts: 2}
      - call: {url: "http://%[1]s/lookup", into: account, timeout: 2s}
      - open_case: {subject: "Address change"}
    then: bot
  - name: broken-lookup
    steps:
      - call: {url: "http://%[1]s/fail", retries: 1, timeout: 2s}
    fail_queue: general
`, account)
}

func TestWorkflowVerifiesLooksUpAndHandsBack(t *testing.T) {
	account, calls := accountServer(t)
	s := startServer(t, serverOptions{sections: workflowSections(t, account)})
	ws := helloWS(t, s, "chat")
	ws.sendEvent(event{ID: "v-1", Customer: "wf-1", Channel: "chat", Type: "verify.requested"})
	codeMsg := ws.expect("outbound")
	code := strings.TrimSuffix(strings.TrimPrefix(codeMsg.Text, "Your verification code is "), ".")
	if len(code) != 6 || codeMsg.Actor != "workflow:verify" {
		t.Fatalf("code message %s", codeMsg.raw)
	}
	ws.mustSend(map[string]any{"type": "accepted", "id": codeMsg.ID})
	wrong := "111111"
	if code == wrong {
		wrong = "222222"
	}
	ws.sendEvent(event{ID: "v-2", Customer: "wf-1", Channel: "chat", Text: "it says " + wrong})
	if f := ws.expect("outbound"); !strings.Contains(f.Text, "does not match") {
		t.Fatalf("after a wrong code: %s", f.raw)
	}
	ws.sendEvent(event{ID: "v-3", Customer: "wf-1", Channel: "chat", Text: code})
	if f := ws.expect("outbound"); !strings.Contains(f.Text, "verified") {
		t.Fatalf("after the code: %s", f.raw)
	}
	eventually(t, frameTimeout, "the workflow to end", func() bool {
		return len(eventsOf(s.timeline("wf-1", 1000), "journey.case_opened")) == 1
	})
	events := s.timeline("wf-1", 1000)
	raw, _ := json.Marshal(events)
	if strings.Contains(string(raw), code) {
		t.Fatalf("the code %s is in the journal: %s", code, raw)
	}
	var results []string
	for _, e := range eventsOf(events, "workflow.step") {
		d := dataOf(t, e)
		results = append(results, fmt.Sprint(d["step"], "=", d["result"]))
		if d["result"] == "waiting" && d["code_sha256"] == nil && d["step"] == "0:send_code" {
			t.Fatalf("code step without its hash: %v", d)
		}
	}
	want := "start=started 0:send_code=waiting 0:send_code=mismatch 0:send_code=verified 1:call=waiting 1:call=ok 2:open_case=ok done=bot"
	if got := strings.Join(results, " "); got != want {
		t.Fatalf("workflow steps\n got %s\nwant %s", got, want)
	}
	var ctx struct {
		Profile      map[string]any
		Conversation struct{ State string }
		Cases        []struct{ Subject, Status string }
	}
	s.call("GET", "/v1/customers/wf-1", tokSupervisor, nil, nil).wantStatus(t, 200).decode(t, &ctx)
	acct, _ := ctx.Profile["account"].(map[string]any)
	if acct["number"] != "ACC-wf-1" || ctx.Conversation.State != "bot" || len(ctx.Cases) != 1 || ctx.Cases[0].Subject != "Address change" {
		t.Fatalf("context after the workflow: %+v", ctx)
	}
	if calls.Load() != 1 {
		t.Fatalf("%d look-up calls, want 1", calls.Load())
	}
}

func TestFailedWorkflowRoutesToAPerson(t *testing.T) {
	account, calls := accountServer(t)
	s := startServer(t, serverOptions{sections: workflowSections(t, account)})
	ws := dialWS(t, s, tokChannel)
	ws.sendEvent(event{ID: "l-1", Customer: "wf-2", Channel: "chat", Type: "lookup.requested"})
	eventually(t, frameTimeout, "the failed workflow to route", func() bool {
		return len(eventsOf(s.timeline("wf-2", 1000), "routing.decided")) == 1
	})
	routed := eventsOf(s.timeline("wf-2", 1000), "routing.decided")[0]
	if d := dataOf(t, routed); d["reason"] != "workflow_failed" || d["queue"] != "general" || routed.Actor != "workflow:broken-lookup" {
		t.Fatalf("routing.decided %+v", routed)
	}
	steps := eventsOf(s.timeline("wf-2", 1000), "workflow.step")
	if last := dataOf(t, steps[len(steps)-1]); last["result"] != "failed" || !strings.Contains(fmt.Sprint(last["error"]), "500") {
		t.Fatalf("last step %v", last)
	}
	if calls.Load() != 2 {
		t.Fatalf("%d calls, want 2 (one retry)", calls.Load())
	}
}
