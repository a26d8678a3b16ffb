package gateway

import (
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/throughline/throughline/actors"
	"github.com/throughline/throughline/journey"
	"github.com/throughline/throughline/persistence"
)

// startTestServer runs a gateway with the configuration and the actors'
// configuration over the memory store, on a free loopback port, and
// returns it; the test's end shuts both down. Every gateway test server
// starts here.
func startTestServer(t *testing.T, cfg Config, acfg actors.Config) *Server {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	engine := persistence.NewMemory(8)
	acfg.Logger = logger
	rt, err := actors.Start(acfg, engine)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cfg.Addr = "127.0.0.1:0"
	s, err := New(cfg, rt, logger, reg, reg, engine.Err)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		_ = rt.Stop(ctx)
		_ = engine.Close()
	})
	return s
}

// The callers of the route matrix, and their tokens.
var callers = []struct{ name, token string }{
	{"none", ""},
	{"unknown token", "no-such-token"},
	{"channel", "gw"},
	{"agent assigned", "alice-token"},
	{"agent not assigned", "bob-token"},
	{"supervisor", "sup"},
	{"admin", "adm"},
}

// routeRoles is what PROTOCOL says of every route, written here apart from
// the table so that a wrong row fails: the auth kind and, for tokens, the
// callers allowed. "agent assigned" alone means an agent may only for its
// customer.
var routeRoles = map[string]struct {
	auth    authKind
	allowed []string
}{
	"GET /v1/channels/ws":                     {authToken, []string{"channel"}},
	"GET /v1/agents/ws":                       {authToken, []string{"agent assigned", "agent not assigned", "supervisor", "admin"}},
	"POST /v1/events":                         {authToken, []string{"channel"}},
	"GET /v1/whoami":                          {authToken, []string{"channel", "agent assigned", "agent not assigned", "supervisor", "admin"}},
	"GET /v1/queues":                          {authToken, []string{"supervisor", "admin"}},
	"GET /v1/agents":                          {authToken, []string{"supervisor", "admin"}},
	"GET /v1/customers":                       {authToken, []string{"supervisor", "admin"}},
	"GET /v1/customers/{id}":                  {authToken, []string{"agent assigned", "supervisor", "admin"}},
	"GET /v1/customers/{id}/timeline":         {authToken, []string{"agent assigned", "supervisor", "admin"}},
	"GET /v1/customers/{id}/next-best-action": {authToken, []string{"agent assigned", "supervisor", "admin"}},
	"PATCH /v1/customers/{id}/profile":        {authToken, []string{"channel", "supervisor", "admin"}},
	"GET /v1/customers/{id}/export":           {authToken, []string{"admin"}},
	"DELETE /v1/customers/{id}":               {authToken, []string{"admin"}},
	"GET /v1/audit":                           {authToken, []string{"admin"}},
	"GET /v1/cluster":                         {authToken, []string{"supervisor", "admin"}},
	"POST /v1/cluster/leave":                  {authToken, []string{"admin"}},
	"GET /v1/analytics/journeys":              {authToken, []string{"supervisor", "admin"}},
	"POST /v1/broadcasts":                     {authToken, []string{"supervisor", "admin"}},
	"GET /v1/broadcasts":                      {authToken, []string{"supervisor", "admin"}},
	"GET /v1/broadcasts/{id}":                 {authToken, []string{"supervisor", "admin"}},
	"DELETE /v1/broadcasts/{id}":              {authToken, []string{"supervisor", "admin"}},
	"POST /v1/broadcasts/{id}/resolve":        {authToken, []string{"supervisor", "admin"}},
	"POST /v1/channels/twilio/sms":            {authSignature, nil},
	"POST /v1/channels/twilio/status":         {authSignature, nil},
	"POST /v1/channels/twilio/voice":          {authSignature, nil},
	"POST /v1/channels/twilio/voice/gather":   {authSignature, nil},
	"GET /v1/channels/whatsapp":               {authSignature, nil},
	"POST /v1/channels/whatsapp":              {authSignature, nil},
	"POST /v1/channels/email":                 {authToken, []string{"channel"}},
	"POST /v1/webchat/token":                  {authToken, []string{"channel"}},
	"GET /v1/webchat/ws":                      {authVisitor, nil},
	"GET /v1/webchat/widget.js":               {authNone, nil},
	"GET /demo/shop":                          {authNone, nil},
	"POST /demo/shop/token":                   {authNone, nil},
	"GET /{$}":                                {authNone, nil},
	"GET /app/":                               {authNone, nil},
	"GET /healthz":                            {authNone, nil},
	"GET /readyz":                             {authNone, nil},
	"GET /metrics":                            {authNone, nil},
	"/":                                       {authNone, nil},
}

// fullServer serves every route of the table: every provider, the demo
// shop, the web app; a queue that takes every message, and two agents.
func fullServer(t *testing.T) *Server {
	t.Helper()
	rules, err := journey.CompileRules([]journey.RuleConfig{{ID: "to-people", When: "event.type == 'message.received'",
		Do: []journey.ActionConfig{{Route: &journey.RouteAction{Queue: "q", BypassBot: true}}}}})
	if err != nil {
		t.Fatal(err)
	}
	queues := []journey.QueuePolicy{{Name: "q", OfferTimeout: time.Minute}}
	acfg := actors.Config{Policy: &journey.Policy{Rules: rules, Queues: queues}, Queues: queues, Agents: []journey.AgentConfig{
		{ID: "alice", Capacity: journey.Capacity{Total: 1}}, {ID: "bob", Capacity: journey.Capacity{Total: 1}}}}
	desks := NewDesks()
	acfg.Desk = desks.Deliver
	cfg := Config{
		Desks: desks,
		Tokens: []Token{{Token: "gw", Role: RoleChannel}, {Token: "alice-token", Role: RoleAgent, Agent: "alice"},
			{Token: "bob-token", Role: RoleAgent, Agent: "bob"}, {Token: "sup", Role: RoleSupervisor}, {Token: "adm", Role: RoleAdmin}},
		Channels: ChannelsConfig{
			Twilio:   &TwilioConfig{AccountSID: "AC1", AuthToken: "twilio-secret", From: "+15550001111", PublicURL: "https://cx.example.com", APIBase: "http://127.0.0.1:1"},
			WhatsApp: &WhatsAppConfig{PhoneNumberID: "1", VerifyToken: "verify", AppSecret: "app-secret", AccessToken: "wa", APIBase: "http://127.0.0.1:1"},
			Email:    &EmailConfig{From: "support@example.com", SMTPAddr: "127.0.0.1:1"},
			Webchat:  &WebchatConfig{Secret: []byte("webchat-secret-webchat-secret-32"), AllowedOrigins: []string{"https://shop.example.com"}},
			DemoShop: true,
		},
		Web: fstest.MapFS{"index.html": {Data: []byte("<!doctype html>")}, "app/main.js": {Data: []byte("export {}")}},
	}
	return startTestServer(t, cfg, acfg)
}

// assignCustomer has alice's desk take a conversation of the customer.
func assignCustomer(t *testing.T, addr, customer string) {
	t.Helper()
	desk, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/v1/agents/ws", http.Header{"Authorization": {"Bearer alice-token"}})
	if err != nil {
		t.Fatalf("desk: %v (%v)", err, resp)
	}
	defer desk.Close()
	_ = desk.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := desk.WriteJSON(map[string]any{"type": "presence", "status": "available", "capacity": 1}); err != nil {
		t.Fatal(err)
	}
	if code, body := request(t, "POST", "http://"+addr+"/v1/events", "gw",
		`{"id":"assign-1","customer":"`+customer+`","type":"message.received","channel":"sms","text":"a person please"}`); code != 200 {
		t.Fatalf("event: %d %s", code, body)
	}
	for {
		var f struct{ Type, Conversation, Ref string }
		_, data, err := desk.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for the offer: %v", err)
		}
		_ = json.Unmarshal(data, &f)
		switch {
		case f.Type == "offer":
			if err := desk.WriteJSON(map[string]any{"type": "accept", "conversation": f.Conversation, "ref": "accept"}); err != nil {
				t.Fatal(err)
			}
		case f.Ref == "accept" && f.Type == "ok":
			return
		case f.Ref == "accept":
			t.Fatalf("accept answered %s", f.Type)
		}
	}
}

// concrete is a request path for a route's pattern.
func concrete(pattern string) (method, path string) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = "GET", "/nothing-here"
	}
	customer := "c-route"
	if strings.HasPrefix(path, "/v1/customers/{id}/export") || (method == "DELETE" && strings.HasPrefix(path, "/v1/customers/")) {
		customer = "c-to-erase" // not the assigned customer
	}
	path = strings.ReplaceAll(path, "/v1/customers/{id}", "/v1/customers/"+customer)
	path = strings.ReplaceAll(path, "{id}", "b-none")
	path = strings.ReplaceAll(path, "{$}", "")
	if path == "/app/" {
		path = "/app/main.js"
	}
	return method, path
}

// Every route of the table, called by every kind of caller, is refused or
// let through as PROTOCOL says; the mux serves exactly the table.
func TestEveryRouteByEveryCaller(t *testing.T) {
	s := fullServer(t)
	addr := s.Addr()
	assignCustomer(t, addr, "c-route")

	table := s.routeTable()
	var patterns []string
	for _, rt := range table {
		patterns = append(patterns, rt.pattern)
		want, ok := routeRoles[rt.pattern]
		if !ok {
			t.Errorf("route %q is in the table but not in this test: say who may call it", rt.pattern)
			continue
		}
		if rt.auth != want.auth {
			t.Errorf("route %q authenticates by %s in the table, want %s", rt.pattern, rt.auth, want.auth)
		}
	}
	for p := range routeRoles {
		if !slices.Contains(patterns, p) {
			t.Errorf("route %q is in this test but not in the table", p)
		}
	}
	// This server configures everything: the mux serves every row, each
	// under its own pattern.
	if !slices.Equal(s.patterns, patterns) {
		t.Errorf("the mux serves %v, the table has %v", s.patterns, patterns)
	}
	mux := s.mux // inside the per-request deadlines (timeouts.go)
	for _, p := range patterns {
		method, path := concrete(p)
		req, _ := http.NewRequest(method, "http://"+addr+path, nil)
		if _, got := mux.Handler(req); got != p {
			t.Errorf("%s %s is served by %q, want %q", method, path, got, p)
		}
	}

	for _, rt := range table {
		want := routeRoles[rt.pattern]
		method, path := concrete(rt.pattern)
		if method == "DELETE" && strings.HasPrefix(path, "/v1/customers/") {
			continue // below, last: it erases
		}
		for _, c := range callers {
			checkCall(t, addr, rt.pattern, method, path, c.name, c.token, want.auth, want.allowed)
		}
	}
	for _, c := range callers {
		checkCall(t, addr, "DELETE /v1/customers/{id}", "DELETE", "/v1/customers/c-to-erase", c.name, c.token, authToken, routeRoles["DELETE /v1/customers/{id}"].allowed)
	}
}

func checkCall(t *testing.T, addr, pattern, method, path, caller, token string, auth authKind, allowed []string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth == authVisitor {
		req.Header.Set("Origin", "https://shop.example.com") // the site the widget is on
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	code := resp.StatusCode
	var e struct{ Error errorBody }
	_ = json.Unmarshal(body, &e)
	switch {
	case auth == authSignature:
		if code != 403 {
			t.Errorf("%s as %s: %d %s, want 403 (no signature)", pattern, caller, code, body)
		}
	case auth == authVisitor:
		if code != 401 {
			t.Errorf("%s as %s: %d %s, want 401 (no visitor token)", pattern, caller, code, body)
		}
	case auth == authNone:
		if code == 401 || code == 403 || code == 429 || code == 503 {
			t.Errorf("%s as %s: %d %s, want it served", pattern, caller, code, body)
		}
	case caller == "none" || caller == "unknown token":
		if code != 401 || e.Error.Code != journey.CodeUnauthorized {
			t.Errorf("%s as %s: %d %s, want 401 unauthorized", pattern, caller, code, body)
		}
	case !slices.Contains(allowed, caller):
		if code != 403 || e.Error.Code != journey.CodeForbidden {
			t.Errorf("%s as %s: %d %s, want 403 forbidden", pattern, caller, code, body)
		}
	default:
		if code == 401 || code == 403 || code == 429 {
			t.Errorf("%s as %s: %d %s, want it let through", pattern, caller, code, body)
		}
	}
}

// No file of the gateway registers a handler but the table's buildMux: a
// route added with mux.Handle elsewhere would escape the table and its
// guard.
func TestOnlyTheRouteTableRegistersHandlers(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok {
				continue
			}
			ast.Inspect(fn, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if ok && (sel.Sel.Name == "Handle" || sel.Sel.Name == "HandleFunc") && fn.Name.Name != "buildMux" {
					t.Errorf("%s: %s registers a handler with %s outside the route table", fset.Position(call.Pos()), fn.Name.Name, sel.Sel.Name)
				}
				return true
			})
		}
	}
	if checked < 10 {
		t.Fatalf("checked %d files: not the gateway's", checked)
	}
}
