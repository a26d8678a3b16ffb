package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/throughline/throughline/actors"
	"github.com/throughline/throughline/journey"
)

// request does an HTTP request with the token and returns the status and body.
func request(t *testing.T, method, url, token, body string) (int, string) {
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
	return resp.StatusCode, string(b)
}

func TestNextBestActionEndpoint(t *testing.T) {
	offers, err := journey.CompileOffers([]journey.OfferConfig{
		{ID: "payment-plan", When: "customer.count('payment.failed', duration('24h')) > 0", Text: "Split it?", Priority: 50},
		{ID: "gold", When: "has(customer.profile.tier) && customer.profile.tier == 'vip'", Text: "Gold?", Priority: 30},
		{ID: "email-only", When: "true", Text: "Paperless?", Priority: 99, Channels: []string{"email"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	responses := map[string]int{}
	addr := startServerWith(t, actors.Config{Policy: &journey.Policy{Offers: offers}, OfferResponded: func(offer, response string) {
		mu.Lock()
		responses[offer+"/"+response]++
		mu.Unlock()
	}})
	base := "http://" + addr
	if code, body := request(t, "POST", base+"/v1/events", "gw", `{"events":[
		{"id":"e1","customer":"nba-1","channel":"sms","text":"hi"},
		{"id":"e2","customer":"nba-1","type":"payment.failed"},
		{"id":"e3","customer":"nba-1","type":"offer.declined","data":{"offer":"gold"}},
		{"id":"e4","customer":"nba-1","type":"offer.accepted","data":{"offer":"no-such-offer"}}]}`); code != 200 {
		t.Fatalf("events: %d %s", code, body)
	}
	code, body := request(t, "GET", base+"/v1/customers/nba-1/next-best-action", "sup", "")
	if code != 200 {
		t.Fatalf("next-best-action: %d %s", code, body)
	}
	want := `{"actions":[{"offer":"payment-plan","score":50,"text":"Split it?","channel":"sms",` +
		`"why":["when: customer.count('payment.failed', duration('24h')) \u003e 0","priority: 50"]}],` +
		`"excluded":[{"offer":"gold","reason":"not_eligible"},{"offer":"email-only","reason":"no_channel"}]}`
	var got, wantV any
	_ = json.Unmarshal([]byte(body), &got)
	_ = json.Unmarshal([]byte(want), &wantV)
	if g, w := mustMarshal(t, got), mustMarshal(t, wantV); g != w {
		t.Errorf("next-best-action\n got %s\nwant %s", g, w)
	}
	if code, body := request(t, "GET", base+"/v1/customers/nobody/next-best-action", "sup", ""); code != 404 || !strings.Contains(body, "not_found") {
		t.Errorf("unknown customer: %d %s", code, body)
	}
	if code, _ := request(t, "GET", base+"/v1/customers/nba-1/next-best-action", "gw", ""); code != 403 {
		t.Errorf("channel token: %d, want 403", code)
	}
	if code, _ := request(t, "GET", base+"/v1/customers/nba-1/next-best-action", "", ""); code != 401 {
		t.Errorf("no token: %d, want 401", code)
	}
	// The answers were counted once durable, an unknown offer as other.
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(responses)
		snapshot := mustMarshal(t, responses)
		mu.Unlock()
		if n == 2 {
			if snapshot != `{"gold/declined":1,"other/accepted":1}` {
				t.Errorf("responses %s", snapshot)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("responses %s", snapshot)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
