package ai

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeLLM is an OpenAI-compatible /v1/chat/completions server whose
// behaviour a test sets; it counts requests and keeps the last one.
type fakeLLM struct {
	*httptest.Server
	calls   atomic.Int32
	last    atomic.Pointer[chatRequest]
	auth    atomic.Pointer[string]
	handler func(w http.ResponseWriter, n int32)
}

func newFakeLLM(t *testing.T, handler func(w http.ResponseWriter, n int32)) *fakeLLM {
	f := &fakeLLM{handler: handler}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		var req chatRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a := r.Header.Get("Authorization")
		f.auth.Store(&a)
		f.last.Store(&req)
		f.handler(w, f.calls.Add(1))
	}))
	t.Cleanup(f.Close)
	return f
}

func answer(w http.ResponseWriter, text string) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": text}}},
	})
}

func newTestOpenAI(t *testing.T, base string, cfg OpenAIConfig) *OpenAI {
	t.Helper()
	cfg.BaseURL, cfg.Model = base, "test-model"
	o, err := NewOpenAI(cfg, demoBuiltin(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	o.sleep = func(ctx context.Context, d time.Duration) error { return ctx.Err() } // no backoff in tests
	return o
}

func TestOpenAIAnswersFromRetrievedArticles(t *testing.T) {
	f := newFakeLLM(t, func(w http.ResponseWriter, _ int32) {
		answer(w, "Please check that your card is not frozen (see article card-declined).")
	})
	t.Setenv("TEST_LLM_KEY", "sk-test-123")
	o := newTestOpenAI(t, f.URL+"/v1/", OpenAIConfig{APIKeyEnv: "TEST_LLM_KEY", Retries: 1})
	req := Request{
		Text: "my card payment failed again",
		History: []Turn{
			{RoleCustomer, "hello, I tried to buy shoes"},
			{RoleBot, "Hello! What can I do for you?"},
			{RoleCustomer, "my card payment failed again"},
		},
	}
	r, err := o.Reply(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if r.Brain != BrainOpenAI || r.Fallback != "" || !strings.Contains(r.Text, "not frozen") {
		t.Errorf("reply %+v, want the server's answer", r)
	}
	if r.Intent != "card_declined" || len(r.Articles) == 0 || r.Articles[0] != "card-declined" || r.Confidence < 0.55 || r.Sentiment >= 0 {
		t.Errorf("reply %+v, want intent, articles, confidence and sentiment from the builtin", r)
	}
	if got := *f.auth.Load(); got != "Bearer sk-test-123" {
		t.Errorf("Authorization = %q", got)
	}
	sent := f.last.Load()
	if sent.Model != "test-model" || sent.Temperature != 0.2 {
		t.Errorf("model %q temperature %v", sent.Model, sent.Temperature)
	}
	roles := []string{}
	for _, m := range sent.Messages {
		roles = append(roles, m.Role)
	}
	if got := strings.Join(roles, ","); got != "system,user,assistant,user" {
		t.Errorf("roles %s, want system, the history without the repeated last message, then the message", got)
	}
	sys := sent.Messages[0].Content
	for _, want := range []string{"article id: card-declined", "Card payment declined", "Reply YES", "only the articles"} {
		if !strings.Contains(sys, want) {
			t.Errorf("system prompt lacks %q:\n%s", want, sys)
		}
	}
	if sent.Messages[1].Content != "hello, I tried to buy shoes" || sent.Messages[3].Content != req.Text {
		t.Errorf("messages %+v", sent.Messages)
	}
}

func TestOpenAIFallsBackOnServerError(t *testing.T) {
	f := newFakeLLM(t, func(w http.ResponseWriter, _ int32) {
		http.Error(w, "overloaded", http.StatusInternalServerError)
	})
	o := newTestOpenAI(t, f.URL, OpenAIConfig{Retries: 2})
	r, err := o.Reply(context.Background(), Request{Text: "my card payment failed again"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Brain != BrainBuiltinFallback || r.Fallback != "http 500" || !strings.Contains(r.Text, "(see article card-declined)") {
		t.Errorf("reply %+v, want the builtin's answer with fallback http 500", r)
	}
	if n := f.calls.Load(); n != 3 {
		t.Errorf("server saw %d requests, want 3 (1 + 2 retries)", n)
	}
}

func TestOpenAIRetriesThenSucceeds(t *testing.T) {
	f := newFakeLLM(t, func(w http.ResponseWriter, n int32) {
		if n == 1 {
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		answer(w, "ok")
	})
	o := newTestOpenAI(t, f.URL, OpenAIConfig{Retries: 1})
	r, err := o.Reply(context.Background(), Request{Text: "hi"})
	if err != nil || r.Brain != BrainOpenAI || r.Text != "ok" || f.calls.Load() != 2 {
		t.Errorf("reply %+v, err %v, %d calls; want the second attempt's answer", r, err, f.calls.Load())
	}
}

func TestOpenAIFallsBackOnTimeout(t *testing.T) {
	release := make(chan struct{})
	f := newFakeLLM(t, func(w http.ResponseWriter, _ int32) {
		<-release
	})
	defer close(release) // before f.Close (cleanup), which waits for handlers
	o := newTestOpenAI(t, f.URL, OpenAIConfig{Retries: 1, Timeout: 50 * time.Millisecond})
	r, err := o.Reply(context.Background(), Request{Text: "my card payment failed again"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Brain != BrainBuiltinFallback || r.Fallback != "timeout" || r.Articles[0] != "card-declined" {
		t.Errorf("reply %+v, want the builtin's answer with fallback timeout", r)
	}
	if n := f.calls.Load(); n != 2 {
		t.Errorf("server saw %d requests, want 2 (1 + 1 retry)", n)
	}
}

func TestOpenAIDoesNotRetryClientErrors(t *testing.T) {
	f := newFakeLLM(t, func(w http.ResponseWriter, _ int32) {
		http.Error(w, "bad key", http.StatusUnauthorized)
	})
	o := newTestOpenAI(t, f.URL, OpenAIConfig{Retries: 3})
	r, _ := o.Reply(context.Background(), Request{Text: "hi"})
	if r.Fallback != "http 401" || f.calls.Load() != 1 {
		t.Errorf("fallback %q after %d calls, want http 401 after 1", r.Fallback, f.calls.Load())
	}
}

func TestOpenAIBadResponses(t *testing.T) {
	for name, c := range map[string]struct {
		handler func(w http.ResponseWriter, n int32)
		reason  string
	}{
		"not json":  {func(w http.ResponseWriter, _ int32) { io.WriteString(w, "<html>") }, "bad response: not JSON"},
		"no choice": {func(w http.ResponseWriter, _ int32) { io.WriteString(w, `{"choices":[]}`) }, "bad response: no answer"},
		"too big": {func(w http.ResponseWriter, _ int32) {
			io.WriteString(w, `{"choices":[{"message":{"content":"`+strings.Repeat("a", ResponseBytesMax)+`"}}]}`)
		}, "response over 1048576 bytes"},
	} {
		f := newFakeLLM(t, c.handler)
		o := newTestOpenAI(t, f.URL, OpenAIConfig{Retries: 1})
		r, err := o.Reply(context.Background(), Request{Text: "hi"})
		if err != nil || r.Brain != BrainBuiltinFallback || r.Fallback != c.reason {
			t.Errorf("%s: reply %+v, err %v; want fallback %q", name, r, err, c.reason)
		}
	}
}

func TestOpenAIConnectionErrorAndCancel(t *testing.T) {
	f := newFakeLLM(t, func(w http.ResponseWriter, _ int32) {})
	url := f.URL
	f.Close()
	o := newTestOpenAI(t, url, OpenAIConfig{Retries: 1})
	r, err := o.Reply(context.Background(), Request{Text: "hi"})
	if err != nil || r.Fallback != "connection error" {
		t.Errorf("reply %+v, err %v; want fallback connection error", r, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := o.Reply(ctx, Request{Text: "hi"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v, want context.Canceled", err)
	}
}

func TestNewOpenAIRefuses(t *testing.T) {
	b := demoBuiltin(t)
	if _, err := NewOpenAI(OpenAIConfig{BaseURL: "http://x", Model: "m", APIKeyEnv: "TEST_UNSET_KEY_VAR"}, b, nil); err == nil || !strings.Contains(err.Error(), "TEST_UNSET_KEY_VAR") {
		t.Errorf("unset key env: err = %v, want one naming it", err)
	}
	if _, err := NewOpenAI(OpenAIConfig{BaseURL: "http://x", Model: "m"}, nil, nil); err == nil {
		t.Error("nil fallback accepted")
	}
	if _, err := NewOpenAI(OpenAIConfig{Model: "m"}, b, nil); err == nil {
		t.Error("missing base_url accepted")
	}
}
