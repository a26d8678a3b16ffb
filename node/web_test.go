package node

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// The web app (PROTOCOL section 10) is served at / with a policy that keeps
// it to its own origin, its files under /app/, and turned off by
// web.enabled: false; the two reads it needs (who a token is, whose an
// identity is) answer as documented.

func TestWebAppIsServedAndCanBeTurnedOff(t *testing.T) {
	c := startChannelsNode(t, ChannelsConfig{})
	resp, err := http.Get(c.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `src="/app/main.js"`) || !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
		t.Fatalf("GET / answered %d, CSP %q, body %.200s", resp.StatusCode, csp, body)
	}
	for _, f := range []string{"/app/main.js", "/app/desk.js", "/app/style.css"} {
		if code, _ := c.do("GET", f, "", "", "", nil); code != 200 {
			t.Errorf("GET %s answered %d", f, code)
		}
	}
	if code, body := c.do("GET", "/app/nothing.js", "", "", "", nil); code != 404 || !strings.Contains(body, `"not_found"`) {
		t.Errorf("a missing file answered %d %s", code, body)
	}
	if code, body := c.do("GET", "/v1/nothing", "", "", "", nil); code != 404 || !strings.Contains(body, `"not_found"`) {
		t.Errorf("an unknown endpoint answered %d %s, want the API's JSON 404", code, body)
	}

	off := false
	cfg := Default()
	cfg.demoWebchatSecret = nil
	cfg.Node.DataDir = t.TempDir()
	cfg.Node.HTTP = "127.0.0.1:0"
	cfg.Node.Partitions = 2
	cfg.Web.Enabled = &off
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = n.Stop(ctx)
	}()
	for _, p := range []string{"/", "/app/main.js"} {
		resp, err := http.Get("http://" + n.Addr() + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("with web.enabled false, GET %s answered %d", p, resp.StatusCode)
		}
	}
}

func TestWhoamiAndFindingACustomerByIdentity(t *testing.T) {
	c := startChannelsNode(t, ChannelsConfig{})
	for tok, want := range map[string]string{
		"alice-secret": `{"agent":"alice","role":"agent"}`,
		"sup-secret":   `{"role":"supervisor"}`,
		"gw-secret":    `{"role":"channel"}`,
	} {
		if code, body := c.do("GET", "/v1/whoami", tok, "", "", nil); code != 200 || body != want {
			t.Errorf("whoami %s answered %d %s, want %s", tok, code, body, want)
		}
	}
	if code, _ := c.do("GET", "/v1/whoami", "nobody", "", "", nil); code != 401 {
		t.Errorf("whoami of an unknown token answered %d", code)
	}

	customer := c.customerOf(`{"email":"Ana@Example.com","phone":"+15551230000"}`)
	for _, q := range []string{"email=ana%40example.com", "email=%20ANA%40example.com", "phone=%2B1%20555%20123%200000"} {
		code, body := c.do("GET", "/v1/customers?"+q, "sup-secret", "", "", nil)
		var out struct{ Customer string }
		if code != 200 || json.Unmarshal([]byte(body), &out) != nil || out.Customer != customer {
			t.Errorf("find %s answered %d %s, want %s", q, code, body, customer)
		}
	}
	for q, want := range map[string]int{"email=nobody%40example.com": 404, "": 400, "email=a%40b.c&phone=1": 400, "Bad=1": 400} {
		if code, body := c.do("GET", "/v1/customers?"+q, "sup-secret", "", "", nil); code != want {
			t.Errorf("find %q answered %d %s, want %d", q, code, body, want)
		}
	}
	if code, _ := c.do("GET", "/v1/customers?email=ana%40example.com", "alice-secret", "", "", nil); code != 403 {
		t.Errorf("an agent finding a customer answered %d, want 403", code)
	}
	// Looking up never creates: the unknown email still belongs to no one.
	if code, _ := c.do("GET", "/v1/customers?email=nobody%40example.com", "sup-secret", "", "", nil); code != 404 {
		t.Errorf("a second look-up of an unknown email answered %d", code)
	}
}

func TestWebSectionOfTheConfigFile(t *testing.T) {
	for yaml, served := range map[string]bool{
		"":                        true,
		"web: {}\n":               true,
		"web: {enabled: true}\n":  true,
		"web: {enabled: false}\n": false,
	} {
		path := t.TempDir() + "/c.yaml"
		if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadConfig(path)
		if err != nil {
			t.Fatalf("%q: %v", yaml, err)
		}
		if got := cfg.Web.files() != nil; got != served {
			t.Errorf("%q: the web app served %v, want %v", yaml, got, served)
		}
	}
	path := t.TempDir() + "/c.yaml"
	if err := os.WriteFile(path, []byte("web: {enable: false}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), "enable") {
		t.Errorf("a misspelt web key answered %v, want an error naming it", err)
	}
}
