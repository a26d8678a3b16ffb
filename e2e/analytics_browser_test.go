package e2e

// The analytics page renders PROTOCOL section 10's response shape as
// figures and SVG charts. The endpoint is built beside this page; until a
// node serves it, the page's fetch of it alone is answered in the browser
// with the section's own example, so the rendering is checked against the
// contract (TestBrowserDeskAndDashboard checks the real endpoint, or its
// 404 message, on the real binary).

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// analyticsExample is PROTOCOL section 10's example response.
const analyticsExample = `{"since": "2026-11-21T10:00:00Z", "until": "2026-11-22T10:00:00Z", "conversations": 1200,
 "outcomes": {"contained": 500, "resolved_by_agent": 420, "abandoned": 80, "open": 200},
 "containment_rate": 0.42, "fcr_rate": 0.71, "repeat_contact_7d_rate": 0.12,
 "escalations": {"customer_asked": 90, "low_confidence": 60, "frustration": 20, "rule": 130, "workflow_failed": 5, "bot_failed": 1},
 "time_to_resolution_ms": {"p50": 240000, "p90": 1800000},
 "paths": [{"steps": ["web:bot", "sms:bot", "sms:agent"], "conversations": 40, "resolved": 31}, {"steps": ["chat:bot"], "conversations": 300, "resolved": 0}],
 "drop_offs": [{"after": "sms:bot", "conversations": 25}],
 "stuck": [{"state": "queued", "queue": "billing", "conversations": 7, "longest_ms": 540000}],
 "offers": [{"offer": "gold-upgrade", "sent": 300, "accepted": 21}]}`

func TestBrowserAnalyticsRendersTheContractShape(t *testing.T) {
	browser := newBrowser(t)
	s := startServer(t, serverOptions{})
	sup := newTab(t, browser, "analytics")
	sup.signIn(s.base, tokSupervisor)
	sup.run("answer the analytics request with the contract's example, then open the page",
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
			const real = window.fetch, example = %s;
			window.fetch = (url, opts) => String(url).startsWith("/v1/analytics/journeys?")
				? Promise.resolve(new Response(JSON.stringify(example), {status: 200, headers: {"Content-Type": "application/json"}}))
				: real(url, opts);
			location.hash = "#/analytics";
		})()`, analyticsExample)))
	sup.wait("the figures", `document.querySelector("#kpi-conversations .value")?.textContent === "1200" &&
		document.querySelector("#kpi-containment .value").textContent === "42%" &&
		document.querySelector("#kpi-fcr .value").textContent === "71%" &&
		document.querySelector("#kpi-repeat .value").textContent === "12%"`)
	type chart struct {
		Title string
		Bars  int
		Texts []string
	}
	charts := eval[[]chart](sup, `[...document.querySelectorAll("#analytics-out figure svg")].map(s => ({
		Title: s.querySelector("title").textContent,
		Bars: s.querySelectorAll("rect[data-value], circle[stroke-dasharray]").length,
		Texts: [...s.querySelectorAll("text")].map(t => t.textContent)}))`)
	want := map[string]int{
		"Outcomes of conversations":               4, // one arc per outcome
		"Escalations to a person by reason":       6,
		"Most frequent channel and handler paths": 2,
		"Last step of abandoned journeys":         1,
		"Offers sent and accepted":                1,
	}
	if len(charts) != len(want) {
		t.Fatalf("%d charts %+v, want %d", len(charts), charts, len(want))
	}
	for _, c := range charts {
		if n, ok := want[c.Title]; !ok || c.Bars != n {
			t.Errorf("chart %q has %d bars or arcs, want %d", c.Title, c.Bars, n)
		}
	}
	texts := eval[string](sup, `document.getElementById("analytics-out").textContent`)
	for _, s := range []string{"web:bot → sms:bot → sms:agent", "40 / 31", "customer asked", "p50 4m 00s, p90 30m 00s", "billing", "9m 00s", "300 / 21"} {
		if !strings.Contains(texts, s) {
			t.Errorf("the analytics page does not show %q", s)
		}
	}
	sup.shot("dashboard-analytics")
}
