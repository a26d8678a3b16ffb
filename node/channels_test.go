package node

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/gorilla/websocket"
	"github.com/throughline/throughline/channels"
	"github.com/throughline/throughline/gateway"
)

// End to end with fake provider APIs: a node in process with the demo bot,
// the providers' webhooks signed as they sign them, and their APIs as
// httptest servers (and a real SMTP server).

type channelsNode struct {
	t    *testing.T
	n    *Node
	base string
}

func startChannelsNode(t *testing.T, ch ChannelsConfig, change ...func(*Config)) *channelsNode {
	t.Helper()
	cfg := Default()
	cfg.demoWebchatSecret = nil
	cfg.Node.DataDir = t.TempDir()
	cfg.Node.HTTP = "127.0.0.1:0"
	cfg.Node.Partitions = 4
	cfg.Channels = ch
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, f := range change {
		f(&cfg)
	}
	n := startNode(t, cfg)
	return &channelsNode{t: t, n: n, base: "http://" + n.Addr()}
}

func (c *channelsNode) do(method, path, token, contentType, body string, header map[string]string) (int, string) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type storedEvent struct {
	ID, Type, Channel, Text, Actor string
	Seq                            uint64
	Data                           map[string]any
}

func (c *channelsNode) timeline(customer string) []storedEvent {
	c.t.Helper()
	status, body := c.do("GET", "/v1/customers/"+customer+"/timeline?after=0&limit=1000", "sup-secret", "", "", nil)
	var out struct{ Events []storedEvent }
	if status != 200 || json.Unmarshal([]byte(body), &out) != nil {
		c.t.Fatalf("timeline %d %s", status, body)
	}
	return out.Events
}

func (c *channelsNode) customerOf(identity string) string {
	c.t.Helper()
	status, body := c.do("POST", "/v1/events", "gw-secret", "", `{"id":"probe-`+strconv.FormatInt(time.Now().UnixNano(), 36)+`","identity":`+identity+`,"type":"probe.seen"}`, nil)
	var out struct{ Ack struct{ Customer string } }
	if status != 200 || json.Unmarshal([]byte(body), &out) != nil {
		c.t.Fatalf("probe %d %s", status, body)
	}
	return out.Ack.Customer
}

func count(events []storedEvent, f func(storedEvent) bool) int {
	n := 0
	for _, e := range events {
		if f(e) {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fakeTwilio is Twilio's Messages API: the first request for each body
// fails with 503, a number ending in 400 is refused with 21211, the rest
// are taken.
type fakeTwilio struct {
	mu       sync.Mutex
	requests []url.Values
	seen     map[string]int
}

func (f *fakeTwilio) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, pass, _ := r.BasicAuth()
	_ = r.ParseForm()
	f.mu.Lock()
	defer f.mu.Unlock()
	if user != "AC0123" || pass != "tw-token" || r.URL.Path != "/2010-04-01/Accounts/AC0123/Messages.json" {
		w.WriteHeader(401)
		return
	}
	f.requests = append(f.requests, r.PostForm)
	f.seen[r.PostForm.Get("StatusCallback")]++
	switch {
	case strings.HasSuffix(r.PostForm.Get("To"), "400"):
		w.WriteHeader(400)
		_, _ = io.WriteString(w, `{"code":21211,"message":"The 'To' number is not a valid phone number.","status":400}`)
	case f.seen[r.PostForm.Get("StatusCallback")] == 1:
		w.WriteHeader(503)
	default:
		w.WriteHeader(201)
		_, _ = io.WriteString(w, `{"sid":"SM`+r.PostForm.Get("To")[1:]+`","status":"queued"}`)
	}
}

func (f *fakeTwilio) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

const twilioPublic = "https://cx.example.com"

func signedTwilio(c *channelsNode, path string, form url.Values) (int, string) {
	sig := channels.TwilioSignature("tw-token", twilioPublic+path, form)
	return c.do("POST", path, "", "application/x-www-form-urlencoded", form.Encode(), map[string]string{"X-Twilio-Signature": sig})
}

func twilioNode(t *testing.T, api string) *channelsNode {
	t.Setenv("TL_TWILIO_TOKEN", "tw-token")
	return startChannelsNode(t, ChannelsConfig{Twilio: &TwilioChannel{
		AccountSID: "AC0123", AuthTokenEnv: "TL_TWILIO_TOKEN", From: "+15550001111", PublicURL: twilioPublic, APIBase: api,
		Limits: ChannelLimits{RetryMin: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond},
	}})
}

func TestTwilioSMSEndToEnd(t *testing.T) {
	fake := &fakeTwilio{seen: map[string]int{}}
	api := httptest.NewServer(fake)
	defer api.Close()
	c := twilioNode(t, api.URL)
	sms := url.Values{"MessageSid": {"SMaaa"}, "AccountSid": {"AC0123"}, "From": {"+15551230000"}, "To": {"+15550001111"}, "Body": {"my card payment failed again"}}

	// Unsigned, wrongly signed, or replayed with another body: 403.
	if status, _ := c.do("POST", "/v1/channels/twilio/sms", "", "application/x-www-form-urlencoded", sms.Encode(), nil); status != 403 {
		t.Errorf("unsigned: %d", status)
	}
	other := url.Values{"MessageSid": {"SMbbb"}, "From": {"+15551230000"}, "Body": {"x"}}
	sig := channels.TwilioSignature("tw-token", twilioPublic+"/v1/channels/twilio/sms", other)
	if status, _ := c.do("POST", "/v1/channels/twilio/sms", "", "application/x-www-form-urlencoded", sms.Encode(), map[string]string{"X-Twilio-Signature": sig}); status != 403 {
		t.Errorf("replayed signature: %d", status)
	}
	// Signed, and retried by Twilio: stored once.
	for range 2 {
		status, body := signedTwilio(c, "/v1/channels/twilio/sms", sms)
		if status != 200 || !strings.Contains(body, "<Response></Response>") {
			t.Fatalf("signed: %d %s", status, body)
		}
	}
	customer := c.customerOf(`{"phone":"+15551230000"}`)
	events := c.timeline(customer)
	if n := count(events, func(e storedEvent) bool {
		return e.Type == "message.received" && e.ID == "twilio:SMaaa" && e.Channel == "sms"
	}); n != 1 {
		t.Fatalf("received %d times: %+v", n, events)
	}
	// The bot's answer is sent through the Messages API: 503 first, then taken.
	waitFor(t, "the answer taken after a retry", func() bool { return fake.count() >= 2 })
	fake.mu.Lock()
	first := fake.requests[0]
	fake.mu.Unlock()
	callback, _ := url.Parse(first.Get("StatusCallback"))
	outbound := callback.Query().Get("outbound")
	if first.Get("To") != "+15551230000" || first.Get("From") != "+15550001111" || first.Get("Body") == "" || !strings.HasPrefix(outbound, "out-") {
		t.Fatalf("request %v", first)
	}
	// Twilio's status callback: delivered.
	status := url.Values{"MessageSid": {"SM15551230000"}, "MessageStatus": {"delivered"}, "AccountSid": {"AC0123"}}
	if code, body := signedTwilio(c, "/v1/channels/twilio/status?outbound="+url.QueryEscape(outbound), status); code != 204 {
		t.Fatalf("status callback %d %s", code, body)
	}
	events = c.timeline(customer)
	if count(events, func(e storedEvent) bool { return e.Type == "message.delivered" && e.Data["outbound"] == outbound }) != 1 {
		t.Errorf("no message.delivered for %s: %+v", outbound, events)
	}

	// A number Twilio refuses: message.failed with Twilio's code.
	bad := url.Values{"MessageSid": {"SMccc"}, "From": {"+15550000400"}, "Body": {"my card payment failed"}}
	if code, _ := signedTwilio(c, "/v1/channels/twilio/sms", bad); code != 200 {
		t.Fatal(code)
	}
	badCustomer := c.customerOf(`{"phone":"+15550000400"}`)
	waitFor(t, "message.failed twilio_21211", func() bool {
		return count(c.timeline(badCustomer), func(e storedEvent) bool { return e.Type == "message.failed" && e.Data["reason"] == "twilio_21211" }) == 1
	})
}

func TestWhatsAppEndToEnd(t *testing.T) {
	var sent atomic.Int32
	var lastBody atomic.Value
	graph := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer wa-access" || r.URL.Path != "/v21.0/106540352242922/messages" {
			w.WriteHeader(401)
			return
		}
		b, _ := io.ReadAll(r.Body)
		lastBody.Store(string(b))
		sent.Add(1)
		_, _ = io.WriteString(w, `{"messaging_product":"whatsapp","contacts":[{"input":"16505551234","wa_id":"16505551234"}],"messages":[{"id":"wamid.OUT1"}]}`)
	}))
	defer graph.Close()
	t.Setenv("TL_WA_VERIFY", "wa-verify")
	t.Setenv("TL_WA_SECRET", "wa-secret")
	t.Setenv("TL_WA_ACCESS", "wa-access")
	c := startChannelsNode(t, ChannelsConfig{WhatsApp: &WhatsAppChannel{PhoneNumberID: "106540352242922",
		VerifyTokenEnv: "TL_WA_VERIFY", AppSecretEnv: "TL_WA_SECRET", AccessTokenEnv: "TL_WA_ACCESS", APIBase: graph.URL + "/v21.0"}})

	if code, body := c.do("GET", "/v1/channels/whatsapp?hub.mode=subscribe&hub.verify_token=wa-verify&hub.challenge=1158201444", "", "", "", nil); code != 200 || body != "1158201444" {
		t.Errorf("verification %d %q", code, body)
	}
	if code, _ := c.do("GET", "/v1/channels/whatsapp?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1", "", "", "", nil); code != 403 {
		t.Errorf("wrong verify token: %d", code)
	}
	hook := `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp",
"contacts":[{"profile":{"name":"Sheena Nelson"},"wa_id":"16505551234"}],
"messages":[{"from":"16505551234","id":"wamid.IN1","timestamp":"1749416383","type":"text","text":{"body":"my card payment failed again"}}]}}]}]}`
	if code, _ := c.do("POST", "/v1/channels/whatsapp", "", "application/json", hook, map[string]string{"X-Hub-Signature-256": "sha256=00"}); code != 403 {
		t.Errorf("bad signature: %d", code)
	}
	sig := map[string]string{"X-Hub-Signature-256": channels.WhatsAppSignature("wa-secret", []byte(hook))}
	for range 2 {
		if code, body := c.do("POST", "/v1/channels/whatsapp", "", "application/json", hook, sig); code != 200 {
			t.Fatalf("webhook %d %s", code, body)
		}
	}
	customer := c.customerOf(`{"whatsapp":"16505551234"}`)
	if n := count(c.timeline(customer), func(e storedEvent) bool { return e.ID == "wa:wamid.IN1" }); n != 1 {
		t.Errorf("stored %d times", n)
	}
	_, body := c.do("GET", "/v1/customers/"+customer, "sup-secret", "", "", nil)
	if !strings.Contains(body, `"name":"Sheena Nelson"`) {
		t.Errorf("profile name not filled: %s", body)
	}
	waitFor(t, "the bot's answer sent to WhatsApp", func() bool { return sent.Load() >= 1 })
	if b := lastBody.Load().(string); !strings.Contains(b, `"to":"16505551234"`) || !strings.Contains(b, `"biz_opaque_callback_data":"out-`) {
		t.Errorf("send body %s", b)
	}
	status := `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp",
"statuses":[{"id":"wamid.OUT1","status":"delivered","timestamp":"1750263773","recipient_id":"16505551234"}]}}]}]}`
	if code, _ := c.do("POST", "/v1/channels/whatsapp", "", "application/json", status, map[string]string{"X-Hub-Signature-256": channels.WhatsAppSignature("wa-secret", []byte(status))}); code != 200 {
		t.Fatal(code)
	}
	if count(c.timeline(customer), func(e storedEvent) bool { return e.Type == "message.delivered" }) != 1 {
		t.Errorf("no message.delivered")
	}
}

// smtpBackend is a real SMTP server's backend that keeps what it receives.
type smtpBackend struct {
	mu   sync.Mutex
	msgs []string
}

func (b *smtpBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return &smtpSession{b: b}, nil }

type smtpSession struct{ b *smtpBackend }

func (s *smtpSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *smtpSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *smtpSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	s.b.mu.Lock()
	s.b.msgs = append(s.b.msgs, string(raw))
	s.b.mu.Unlock()
	return err
}
func (s *smtpSession) Reset()        {}
func (s *smtpSession) Logout() error { return nil }

func (b *smtpBackend) received() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.msgs...)
}

func startSMTP(t *testing.T) (*smtpBackend, string) {
	b := &smtpBackend{}
	srv := smtp.NewServer(b)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.Addr = "127.0.0.1:0"
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return b, ln.Addr().String()
}

func postMail(c *channelsNode, raw string) (int, string) {
	return c.do("POST", "/v1/channels/email", "gw-secret", "message/rfc822", raw, nil)
}

// An email thread continues one case; a call from the same customer's
// phone hears about the case and is enqueued on hand-over.
func TestEmailThreadThenVoiceCall(t *testing.T) {
	mailbox, smtpAddr := startSMTP(t)
	fake := &fakeTwilio{seen: map[string]int{}}
	api := httptest.NewServer(fake)
	defer api.Close()
	t.Setenv("TL_TWILIO_TOKEN", "tw-token")
	c := startChannelsNode(t, ChannelsConfig{
		Email: &EmailChannel{From: "Support <support@example.com>", SMTP: struct {
			Addr        string `yaml:"addr"`
			UsernameEnv string `yaml:"username_env"`
			PasswordEnv string `yaml:"password_env"`
			StartTLS    bool   `yaml:"starttls"`
		}{Addr: smtpAddr}},
		Twilio: &TwilioChannel{AccountSID: "AC0123", AuthTokenEnv: "TL_TWILIO_TOKEN", From: "+15550001111", PublicURL: twilioPublic, APIBase: api.URL},
	})
	first := "From: Ana <ana@example.org>\r\nTo: support@example.com\r\nSubject: Double charge\r\nMessage-ID: <m1@example.org>\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\nmy card payment failed and I was charged twice\r\n"
	if code, body := postMail(c, first); code != 200 {
		t.Fatalf("mail %d %s", code, body)
	}
	if code, body := postMail(c, first); code != 200 || !strings.Contains(body, `"duplicate":true`) {
		t.Errorf("the same mail again: %d %s", code, body)
	}
	waitFor(t, "the bot's reply by SMTP", func() bool { return len(mailbox.received()) >= 1 })
	reply := mailbox.received()[0]
	if !strings.Contains(reply, "In-Reply-To: <m1@example.org>") || !strings.Contains(reply, "Subject: Re: Double charge") {
		t.Fatalf("reply headers:\n%s", reply)
	}
	msgID := reply[strings.Index(reply, "Message-ID: <")+len("Message-ID: <"):]
	msgID = msgID[:strings.Index(msgID, ">")]
	second := "From: ana@example.org\r\nSubject: Re: Double charge\r\nMessage-ID: <m2@example.org>\r\nIn-Reply-To: <" + msgID + ">\r\n" +
		"References: <m1@example.org> <" + msgID + ">\r\n\r\nstill charged twice\r\n\r\nOn Sun, Support wrote:\r\n> the bot's answer\r\n"
	if code, body := postMail(c, second); code != 200 {
		t.Fatalf("reply mail %d %s", code, body)
	}
	customer := c.customerOf(`{"email":"ana@example.org"}`)
	events := c.timeline(customer)
	if n := count(events, func(e storedEvent) bool { return e.Type == "journey.case_opened" }); n != 1 {
		t.Fatalf("%d cases opened for one thread", n)
	}
	if count(events, func(e storedEvent) bool { return e.Text == "still charged twice" }) != 1 {
		t.Errorf("quoted reply not stripped: %+v", events)
	}
	// The customer's phone is linked, then they call.
	if code, body := c.do("POST", "/v1/events", "gw-secret", "", `{"id":"link-1","customer":"`+customer+`","identity":{"phone":"+15551239999"},"type":"contact.linked"}`, nil); code != 200 {
		t.Fatalf("link %d %s", code, body)
	}
	call := url.Values{"CallSid": {"CA1"}, "From": {"+15551239999"}, "To": {"+15550001111"}, "CallStatus": {"ringing"}}
	code, twiml := signedTwilio(c, "/v1/channels/twilio/voice", call)
	if code != 200 || !strings.Contains(twiml, "I see you wrote to us about Double charge.") || !strings.Contains(twiml, `<Gather input="speech dtmf"`) {
		t.Fatalf("greeting %d %s", code, twiml)
	}
	gather := url.Values{"CallSid": {"CA1"}, "From": {"+15551239999"}, "SpeechResult": {"I want to talk to a person"}}
	code, twiml = signedTwilio(c, "/v1/channels/twilio/voice/gather?turn=1", gather)
	if code != 200 || !strings.Contains(twiml, "<Enqueue>general</Enqueue>") {
		t.Fatalf("hand-over %d %s", code, twiml)
	}
	_, body := c.do("GET", "/v1/customers/"+customer, "sup-secret", "", "", nil)
	if !strings.Contains(body, `"state":"queued"`) || !strings.Contains(body, "Double charge") {
		t.Errorf("the call does not wait in the queue with the email's case: %s", body)
	}
	if code, _ := signedTwilio(c, "/v1/channels/twilio/voice", url.Values{"CallSid": {"CA1"}, "From": {"+15551239999"}, "CallStatus": {"completed"}}); code != 200 {
		t.Error(code)
	}
	if count(c.timeline(customer), func(e storedEvent) bool { return e.Type == "call.ended" }) != 1 {
		t.Error("no call.ended")
	}
}

func TestWebchatEndToEnd(t *testing.T) {
	t.Setenv("TL_WEBCHAT", "webchat-secret")
	c := startChannelsNode(t, ChannelsConfig{Webchat: &WebchatChannel{VisitorSecretEnv: "TL_WEBCHAT", AllowedOrigins: []string{"https://shop.example.com"}}})
	code, body := c.do("POST", "/v1/webchat/token", "gw-secret", "application/json", `{"visitor":"v-123","identity":{"email":"Ana@Example.com"}}`, nil)
	var tok struct{ Token string }
	if code != 200 || json.Unmarshal([]byte(body), &tok) != nil || tok.Token == "" {
		t.Fatalf("token %d %s", code, body)
	}
	if code, _ := c.do("POST", "/v1/webchat/token", "sup-secret", "application/json", `{"visitor":"v-1"}`, nil); code != 403 {
		t.Errorf("token with a supervisor's token: %d", code)
	}
	wsURL := "ws" + strings.TrimPrefix(c.base, "http") + "/v1/webchat/ws?token=" + url.QueryEscape(tok.Token)
	if _, resp, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Origin": {"https://evil.example.com"}}); err == nil || resp.StatusCode != 403 {
		t.Errorf("another origin was let in")
	}
	dial := func() *websocket.Conn {
		ws, _, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Origin": {"https://shop.example.com"}})
		if err != nil {
			t.Fatal(err)
		}
		return ws
	}
	read := func(ws *websocket.Conn, want func(map[string]any) bool) map[string]any {
		t.Helper()
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		var seen []map[string]any
		for {
			var f map[string]any
			if err := ws.ReadJSON(&f); err != nil {
				t.Fatalf("%v (frames read before: %v)", err, seen)
			}
			seen = append(seen, f)
			if want(f) {
				return f
			}
		}
	}
	ws := dial()
	_ = ws.WriteJSON(map[string]string{"type": "message", "id": "m1", "text": "my card payment failed again"})
	// The bot may answer before the ack reaches the socket: both, in any
	// order.
	var answer map[string]any
	acked := false
	for !acked || answer == nil {
		f := read(ws, func(f map[string]any) bool {
			return f["type"] == "ack" && f["id"] == "m1" || f["type"] == "message" && f["from"] == "bot"
		})
		if f["type"] == "ack" {
			acked = true
		} else {
			answer = f
		}
	}
	ws.Close()
	// Reconnect: the history of both sides.
	ws = dial()
	defer ws.Close()
	mine := read(ws, func(f map[string]any) bool { return f["type"] == "message" && f["from"] == "visitor" })
	bot := read(ws, func(f map[string]any) bool { return f["type"] == "message" && f["from"] == "bot" })
	if mine["id"] != "m1" || bot["id"] != answer["id"] || bot["history"] != true {
		t.Errorf("history %v %v, answer %v", mine, bot, answer)
	}
	// A visitor with 8 sockets open is refused a ninth (429 rate_limited).
	// Each socket's history comes once the hub holds it: read, the eight
	// are counted before the ninth dials.
	var open []*websocket.Conn
	for range 7 {
		o := dial()
		read(o, func(f map[string]any) bool { return f["type"] == "message" && f["history"] == true })
		open = append(open, o)
	}
	if _, resp, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Origin": {"https://shop.example.com"}}); err == nil || resp == nil || resp.StatusCode != 429 {
		t.Errorf("a ninth socket was not refused with 429")
	}
	for _, o := range open {
		o.Close()
	}
	if code, body := c.do("GET", "/v1/webchat/widget.js", "", "", "", nil); code != 200 || !strings.Contains(body, "/v1/webchat/ws?token=") || strings.Contains(body, "import(") {
		t.Errorf("widget %d", code)
	}
	_ = gateway.RoleChannel
}

// startNode validates cfg, starts a node on it and stops it at the test's
// end.
func startNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = n.Stop(ctx)
	})
	return n
}
