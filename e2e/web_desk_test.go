package e2e

// The web app in a browser (PROTOCOL section 10) against the real binary:
// a supervisor watches the queue while a customer who wrote an email asks
// the bot, then for a person; the agent signs in, goes available, sees the
// offer with the email and the bot's cited article, accepts, replies (the
// channel gateway receives it), keeps the conversation across a server
// restart without a gap or a duplicate, and wraps up; the supervisor finds
// the journey by email and opens the analytics.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// nextOutbound skips frames until an outbound by actor.
func nextOutbound(t *testing.T, ws *wsClient, actor string) frame {
	t.Helper()
	for {
		f, ok := ws.next()
		if !ok {
			t.Fatalf("the channel connection closed before an outbound by %s", actor)
		}
		if f.Type == "outbound" && f.Actor == actor {
			return f
		}
	}
}

// jsString quotes s for a JavaScript expression.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestBrowserDeskAndDashboard(t *testing.T) {
	browser := newBrowser(t)
	opts := serverOptions{sections: deskSections(t, 2, ""), tokens: []string{"{token: bob, role: agent, agent: bob}"}}
	s := startServer(t, opts)
	const customer = "shopper-1"

	sup := newTab(t, browser, "supervisor")
	sup.signIn(s.base, tokSupervisor)
	waiting := func(n int) string {
		return fmt.Sprintf(`document.querySelector('tr[data-queue="general"] .waiting')?.textContent === "%d"`, n)
	}
	sup.wait("queue general with none waiting", waiting(0))

	// The customer's story: an email the bot answers from an article, then
	// a request for a person on chat while no agent is available.
	ws := helloWS(t, s, "chat", "email")
	ws.sendEvent(event{ID: "mail-1", Customer: customer, Identity: map[string]string{"email": "ana@example.com"}, Channel: "email",
		Text: "My card payment failed twice yesterday", Data: map[string]any{"subject": "Payment failed"}})
	if out := nextOutbound(t, ws, "ai"); out.Channel != "email" {
		t.Fatalf("the bot answered the email on %s", out.raw)
	}
	article := ""
	for _, e := range s.timeline(customer, 1000) {
		if e.Type == "ai.replied" {
			if a, _ := e.Data["articles"].([]any); len(a) > 0 {
				article, _ = a[0].(string)
			}
		}
	}
	if article == "" {
		t.Fatal("the bot cited no article: the test needs a bot turn with one")
	}
	ws.sendEvent(event{ID: "chat-2", Customer: customer, Channel: "chat", Text: "I want to talk to a person"})
	nextOutbound(t, ws, "ai")
	sup.wait("the queue count going up live", waiting(1))
	sup.shot("dashboard")

	agent := newTab(t, browser, "agent")
	agent.signIn(s.base, tokAgent)
	agent.run("go available", chromedp.Click(chromedp.CSS("#presence-available")))
	agent.wait("presence available", `document.getElementById("presence-status").textContent === "available"`)
	agent.wait("the offer", fmt.Sprintf(`!!document.querySelector('.offer[data-customer=%q]')`, customer))
	agent.wait("the earlier email in the offer's timeline, with its channel",
		`[...document.querySelectorAll('#work .ev[data-type="message.received"]')].some(e => e.textContent.includes("My card payment failed twice") && e.querySelector("svg title").textContent === "channel email")`)
	agent.wait("the bot's cited article", fmt.Sprintf(`[...document.querySelectorAll('#work .ev[data-type="ai.replied"] .cite')].some(e => e.textContent === %s)`, jsString(article)))
	agent.wait("the routing decision with its reason", `[...document.querySelectorAll('#work .ev[data-type="routing.decided"]')].some(e => e.textContent.includes("customer_asked"))`)
	agent.wait("the candidates considered", `[...document.querySelectorAll('#work .ev[data-type="agent.offered"] .cands li')].some(e => e.textContent.includes("alice"))`)
	agent.wait("the hand-over summary", `document.querySelector('#work .summary')?.textContent.includes("My card payment failed twice")`)
	agent.shot("desk-offer")

	agent.run("accept", chromedp.Click(chromedp.CSS(fmt.Sprintf(`.offer[data-customer=%q] .btn.ok`, customer))))
	agent.wait("the conversation's tab", fmt.Sprintf(`document.getElementById("tab-%s")?.getAttribute("aria-selected") === "true"`, customer))
	sup.wait("the queue count going down live", waiting(0))

	const reply = "Hi Ana, I'm Alice. I see your email about the card."
	agent.run("reply", chromedp.SendKeys(chromedp.CSS("#reply-text"), reply), chromedp.Click(chromedp.CSS("#reply-send")))
	if out := nextOutbound(t, ws, "agent:alice"); out.Text != reply || out.Customer != customer || out.Channel != "chat" {
		t.Fatalf("the gateway received %s", out.raw)
	}
	agent.wait("the reply in the timeline", fmt.Sprintf(`[...document.querySelectorAll('#work .ev[data-type="message.sent"]')].some(e => e.textContent.includes(%s))`, jsString(reply)))

	// The server restarts; the desk says it is offline, reconnects, and
	// shows what the customer wrote meanwhile, nothing missed or twice.
	s.kill()
	agent.wait("the offline notice", `document.body.dataset.online === "false" && !document.getElementById("offline").hidden`)
	opts.dataDir, opts.addr = s.dataDir, s.addr
	s = startServer(t, opts)
	ws = helloWS(t, s, "chat", "email")
	ws.sendEvent(event{ID: "chat-3", Customer: customer, Channel: "chat", Text: "Thanks! Is my card blocked now?"})
	ws.sendEvent(event{ID: "chat-4", Customer: customer, Channel: "chat", Text: "I'm at the shop right now."})
	agent.wait("online again", `document.body.dataset.online === "true"`)
	agent.wait("what the customer wrote while the desk was away", `document.querySelector('#work .timeline').textContent.includes("I'm at the shop right now.")`)
	stored := s.timeline(customer, 1000)
	last := stored[len(stored)-1].Seq
	agent.wait("the desk at the server's last seq", fmt.Sprintf(`document.querySelector('#work .timeline').dataset.last === "%d"`, last))
	shown := eval[[]uint64](agent, `[...document.querySelectorAll('#work .timeline [data-seq]')].map(e => Number(e.dataset.seq))`)
	var want []uint64
	for _, e := range stored {
		if len(shown) > 0 && e.Seq >= shown[0] {
			want = append(want, e.Seq)
		}
	}
	if len(shown) == 0 || !slices.Equal(shown, want) {
		t.Fatalf("the desk shows seqs %v; the server has %v from the first shown: a gap or a duplicate", shown, want)
	}
	agent.shot("desk")

	agent.run("wrap up", chromedp.SetValue(chromedp.CSS("#wrapup-disposition"), "resolved"),
		chromedp.SendKeys(chromedp.CSS("#wrapup-note"), "card reissued"), chromedp.Click(chromedp.CSS("#wrapup")))
	agent.wait("the tab closed", fmt.Sprintf(`!document.getElementById("tab-%s")`, customer))
	eventually(t, 10*time.Second, "agent.wrapped_up stored", func() bool {
		for _, e := range s.timeline(customer, 1000) {
			if e.Type == "agent.wrapped_up" {
				if e.Data["disposition"] != "resolved" || e.Data["note"] != "card reissued" {
					t.Fatalf("agent.wrapped_up %v", e.Data)
				}
				return true
			}
		}
		return false
	})

	// The supervisor finds the journey by email, and opens the analytics.
	sup.wait("the dashboard back online", `document.body.dataset.online === "true"`)
	sup.run("open journeys", chromedp.Evaluate[chromedp.Void](`location.hash = "#/journey"`), chromedp.WaitVisible(chromedp.CSS("#lookup")),
		chromedp.SendKeys(chromedp.CSS("#lookup"), "Ana@Example.com"), chromedp.Click(chromedp.CSS("#lookup-go")))
	sup.wait("the journey found by email, wrap-up included", `!!document.querySelector('#journey-out .ev[data-type="agent.wrapped_up"]') && document.querySelector('#journey-out .ev[data-type="message.received"]').textContent.includes("My card payment failed twice")`)
	sup.shot("dashboard-journey")

	// A broadcast to everyone who wrote in the last hour, with its progress.
	var started struct{ ID string }
	s.call("POST", "/v1/broadcasts", tokSupervisor, map[string]any{
		"segment": map[string]any{"event": "message.received", "within": "1h"},
		"message": map[string]any{"text": "Card payments are back to normal."},
	}, nil).wantStatus(t, 202).decode(t, &started)
	eventually(t, 10*time.Second, "the broadcast done", func() bool {
		var st struct{ State string }
		s.call("GET", "/v1/broadcasts/"+started.ID, tokSupervisor, nil, nil).wantStatus(t, 200).decode(t, &st)
		return st.State == "done"
	})
	var st struct{ Targeted, Sent int }
	s.call("GET", "/v1/broadcasts/"+started.ID, tokSupervisor, nil, nil).wantStatus(t, 200).decode(t, &st)
	if st.Targeted != 1 {
		t.Fatalf("the broadcast targeted %d customers, want 1", st.Targeted)
	}
	sup.run("open broadcasts", chromedp.Evaluate[chromedp.Void](`location.hash = "#/broadcasts"`))
	sup.wait("the broadcast done, its counts shown", fmt.Sprintf(`(() => { const c = document.querySelector('[data-broadcast=%q]');
		return c && c.querySelector(".pill").textContent === "done" && c.querySelector("[role=progressbar]").getAttribute("aria-valuenow") === "100" &&
			c.querySelector("dl").textContent.includes("targeted1sent%d"); })()`, started.ID, st.Sent))
	sup.shot("dashboard-broadcasts")

	sup.run("open analytics", chromedp.Evaluate[chromedp.Void](`location.hash = "#/analytics"`))
	resp, err := s.tryCall("GET", "/v1/analytics/journeys", tokSupervisor, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	switch resp.status {
	case http.StatusNotFound:
		sup.wait("the message that analytics is not there", `document.getElementById("analytics-missing")?.textContent.includes("404")`)
	case http.StatusOK:
		var a struct{ Conversations int }
		resp.decode(t, &a)
		sup.wait("the analytics figures and charts", fmt.Sprintf(`document.querySelector("#kpi-conversations .value")?.textContent === "%d" && document.querySelectorAll("#analytics-out figure svg").length >= 5`, a.Conversations))
		sup.shot("dashboard-analytics")
	default:
		t.Fatalf("GET /v1/analytics/journeys answered %d %s", resp.status, strings.TrimSpace(string(resp.body)))
	}
}
