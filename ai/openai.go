package ai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// OpenAI is a brain that asks an OpenAI-compatible chat completions server,
// giving it the articles the builtin finds (RAG). Intent, sentiment, query
// and articles come from the builtin; so does Confidence: a language model
// states none, and the answer can only be as good as the articles it was
// given, so the builtin's retrieval confidence is the honest estimate.
//
// When the server fails (after the configured retries) the builtin's own
// reply is returned with Brain "builtin_fallback" and Fallback the reason;
// that is not an error. A cancelled ctx is. Safe for concurrent use.
type OpenAI struct {
	cfg      OpenAIConfig
	url      string
	key      string
	builtin  *Builtin
	client   *http.Client
	sleep    func(ctx context.Context, d time.Duration) error
	attempts int
}

// NewOpenAI builds an openai brain over fallback. A nil client means
// http.DefaultClient. The API key is read from cfg.APIKeyEnv now.
func NewOpenAI(cfg OpenAIConfig, fallback *Builtin, client *http.Client) (*OpenAI, error) {
	if fallback == nil {
		return nil, errors.New("ai: brain openai: a builtin brain is required for retrieval and fallback")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = TimeoutDefault
	}
	key := ""
	if cfg.APIKeyEnv != "" {
		key = os.Getenv(cfg.APIKeyEnv)
		if key == "" {
			return nil, fmt.Errorf("ai: brain openai: environment variable %s (api_key_env) is empty or unset", cfg.APIKeyEnv)
		}
	}
	if client == nil {
		client = http.DefaultClient
	}
	base := strings.TrimSuffix(strings.TrimSuffix(cfg.BaseURL, "/"), "/v1")
	return &OpenAI{
		cfg: cfg, url: base + "/v1/chat/completions", key: key,
		builtin: fallback, client: client, sleep: sleepCtx, attempts: 1 + cfg.Retries,
	}, nil
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatRequest struct {
	Model       string        `json:"model"`
	Messages    []chatMessage `json:"messages"`
	Temperature float64       `json:"temperature"`
}

type chatResponse struct {
	Choices []struct {
		Message chatMessage `json:"message"`
	} `json:"choices"`
}

// Reply asks the server, falling back to the builtin's reply when it fails.
func (o *OpenAI) Reply(ctx context.Context, req Request) (Reply, error) {
	if err := req.validate(); err != nil {
		return Reply{}, err
	}
	if err := ctx.Err(); err != nil {
		return Reply{}, err
	}
	base := o.builtin.reply(req)
	body, err := json.Marshal(chatRequest{Model: o.cfg.Model, Messages: o.messages(req, base), Temperature: 0.2})
	if err != nil {
		panic(fmt.Sprintf("ai: marshal a chat request: %v", err)) // strings only: cannot fail
	}
	answer, reason, err := o.complete(ctx, body)
	if err != nil {
		return Reply{}, err
	}
	if reason != "" {
		base.Brain, base.Fallback = BrainBuiltinFallback, reason
		return base, nil
	}
	r := base
	r.Brain, r.Text = BrainOpenAI, answer
	return r, nil
}

// messages builds the prompt: a system message with the articles, the recent
// history and the customer's message.
func (o *OpenAI) messages(req Request, base Reply) []chatMessage {
	var sys strings.Builder
	sys.WriteString("You are a customer service assistant. Answer the customer's last message " +
		"using only the articles below. Be brief and friendly. Cite the id of the article you used, " +
		"like (see article <id>). If the articles do not answer the question, say you are not sure " +
		"and offer to hand over to an agent.\n\nArticles:\n")
	if len(base.Articles) == 0 {
		sys.WriteString("(none found)\n")
	}
	for _, id := range base.Articles {
		a, _ := o.builtin.kb.Article(id)
		fmt.Fprintf(&sys, "\n--- article id: %s\ntitle: %s\n%s\n", a.ID, a.Title, truncateText(a.Body, PromptArticleBytesMax))
	}
	msgs := []chatMessage{{Role: "system", Content: sys.String()}}
	history := req.History
	if n := len(history); n > 0 && history[n-1].Role == RoleCustomer && history[n-1].Text == req.Text {
		history = history[:n-1] // the caller included the latest message
	}
	if len(history) > PromptHistoryTurnsMax {
		history = history[len(history)-PromptHistoryTurnsMax:]
	}
	for _, t := range history {
		role := "assistant"
		if t.Role == RoleCustomer {
			role = "user"
		}
		msgs = append(msgs, chatMessage{Role: role, Content: truncateText(t.Text, PromptTurnBytesMax)})
	}
	return append(msgs, chatMessage{Role: "user", Content: truncateText(req.Text, PromptTurnBytesMax)})
}

// complete POSTs body with retries. It returns the answer, or the reason to
// fall back, or an error when ctx is done.
func (o *OpenAI) complete(ctx context.Context, body []byte) (answer, reason string, err error) {
	backoff := backoffBase
	for attempt := 1; ; attempt++ {
		answer, reason, retry := o.attempt(ctx, body)
		if err := ctx.Err(); err != nil {
			return "", "", fmt.Errorf("ai: brain openai: %w", err)
		}
		if reason == "" || !retry || attempt == o.attempts {
			return answer, reason, nil
		}
		if err := o.sleep(ctx, backoff); err != nil {
			return "", "", fmt.Errorf("ai: brain openai: %w", err)
		}
		backoff = min(2*backoff, backoffMax)
	}
}

// attempt makes one request. reason is "" on success; retry tells whether
// the failure is worth another attempt (5xx, 429, timeout, connection).
func (o *OpenAI) attempt(ctx context.Context, body []byte) (answer, reason string, retry bool) {
	ctx, cancel := context.WithTimeout(ctx, o.cfg.Timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, o.url, bytes.NewReader(body))
	if err != nil {
		return "", "bad request: " + err.Error(), false
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	if o.key != "" {
		hreq.Header.Set("Authorization", "Bearer "+o.key)
	}
	resp, err := o.client.Do(hreq)
	if err != nil {
		return "", transportReason(ctx, err), true
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, ResponseBytesMax+1))
	if err != nil {
		return "", transportReason(ctx, err), true
	}
	if resp.StatusCode != http.StatusOK {
		code := resp.StatusCode
		return "", fmt.Sprintf("http %d", code), code >= 500 || code == http.StatusTooManyRequests
	}
	if len(data) > ResponseBytesMax {
		return "", fmt.Sprintf("response over %d bytes", ResponseBytesMax), false
	}
	var cr chatResponse
	if err := json.Unmarshal(data, &cr); err != nil {
		return "", "bad response: not JSON", false
	}
	if len(cr.Choices) == 0 || strings.TrimSpace(cr.Choices[0].Message.Content) == "" {
		return "", "bad response: no answer", false
	}
	return truncateText(strings.TrimSpace(cr.Choices[0].Message.Content), ReplyTextBytesMax), "", false
}

func transportReason(ctx context.Context, err error) string {
	var ne net.Error
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "connection error"
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
