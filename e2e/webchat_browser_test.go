package e2e

// Issue 11's web chat in a browser: the built-in demo's /demo/shop page
// with widget.js, a visitor's message in, the bot's answer shown, and the
// history back after a reload.

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/chromedp/chromedp"
)

func TestBrowserWebchatWidgetTalksToTheBot(t *testing.T) {
	browser := newBrowser(t)
	s := startServer(t, serverOptions{demo: true})
	shop := newTab(t, browser, "shop")
	shop.run("open the demo shop and the widget", chromedp.Navigate(s.base+"/demo/shop"),
		chromedp.WaitVisible(chromedp.CSS(".tl-open")), chromedp.Click(chromedp.CSS(".tl-open")),
		chromedp.WaitVisible(chromedp.CSS(".tl-input")))
	const question = "my card was declined"
	shop.run("ask", chromedp.SendKeys(chromedp.CSS(".tl-input"), question), chromedp.Click(chromedp.CSS(".tl-form button[type=submit]")))
	shop.wait("the bot's answer in the widget", `!!document.querySelector(".tl-msg.tl-bot")`)

	// The answer shown is the one the journey recorded for this visitor.
	visitor := eval[string](shop, `localStorage.getItem("throughline_visitor")`)
	var found struct{ Customer string }
	s.call("GET", "/v1/customers?web="+url.QueryEscape(visitor), "sup-secret", nil, nil).wantStatus(t, 200).decode(t, &found)
	var page timelinePage
	s.call("GET", customerPath(found.Customer)+"/timeline?after=0&limit=1000", "sup-secret", nil, nil).wantStatus(t, 200).decode(t, &page)
	var received, sent string
	for _, e := range page.Events {
		switch {
		case e.Type == "message.received" && e.Channel == "web":
			received = e.Text
		case e.Type == "message.sent" && e.Actor == "ai" && sent == "":
			sent = e.Text
		}
	}
	if received != question || sent == "" {
		t.Fatalf("the journey of visitor %s recorded %q in and %q out", visitor, received, sent)
	}
	shown := eval[string](shop, `document.querySelector(".tl-msg.tl-bot").textContent`)
	if shown != sent {
		t.Fatalf("the widget shows %q; the bot sent %q", shown, sent)
	}

	// A reload brings the conversation back from the server's history.
	shop.run("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(".tl-open")), chromedp.Click(chromedp.CSS(".tl-open")))
	shop.wait("the history after a reload", fmt.Sprintf(`[...document.querySelectorAll(".tl-msg.tl-visitor")].some(e => e.textContent === %s) && [...document.querySelectorAll(".tl-msg.tl-bot")].some(e => e.textContent === %s)`, jsString(question), jsString(sent)))
	shop.shot("webchat")
}
