package actors

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"time"

	"github.com/throughline/throughline/journey"
)

// WorkflowRunner does the work of workflow steps that journey cannot: it
// draws one-time codes from crypto/rand and calls HTTP endpoints. Safe for
// concurrent use; the zero value works.
type WorkflowRunner struct {
	// Client makes the calls; nil: a client of its own.
	Client *http.Client
}

// Limits of a call step.
const (
	callAnswerMax  = 64 << 10               // bytes of an endpoint's answer read
	callBackoffMin = 100 * time.Millisecond // wait before a retry, doubled each time
)

// Run does one task; the result carries Err when it failed.
func (w *WorkflowRunner) Run(ctx context.Context, t journey.WorkflowTask) journey.WorkflowResult {
	r := journey.WorkflowResult{Workflow: t.Workflow, Step: t.Step}
	switch t.Kind {
	case "code":
		r.Code = newCode(t.Digits)
	case "call":
		answer, err := w.call(ctx, t)
		if err != nil {
			r.Err = err.Error()
		}
		r.Answer = answer
	default:
		r.Err = "unknown workflow task " + t.Kind
	}
	return r
}

func newCode(digits int) string {
	b := make([]byte, digits)
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(10))
		if err != nil {
			panic("actors: crypto/rand: " + err.Error())
		}
		b[i] = byte('0' + n.Int64())
	}
	return string(b)
}

// callBody is what a call step POSTs: the customer's journey context.
type callBody struct {
	Workflow string          `json:"workflow"`
	Step     int             `json:"step"`
	Context  journey.Context `json:"context"`
}

// call POSTs the customer's context and returns the JSON object answered,
// retrying 5xx answers and network errors with a doubling backoff.
func (w *WorkflowRunner) call(ctx context.Context, t journey.WorkflowTask) (json.RawMessage, error) {
	body, err := json.Marshal(callBody{Workflow: t.Workflow, Step: t.Step, Context: t.Context})
	if err != nil {
		return nil, fmt.Errorf("call: %w", err)
	}
	client := w.Client
	if client == nil {
		client = http.DefaultClient
	}
	backoff := callBackoffMin
	for attempt := 0; ; attempt++ {
		answer, retry, err := w.attempt(ctx, client, t.Call, body)
		if err == nil {
			return answer, nil
		}
		if !retry || attempt >= t.Call.Retries {
			return nil, err
		}
		select {
		case <-time.After(backoff):
			backoff *= 2
		case <-ctx.Done():
			return nil, fmt.Errorf("call: %w", ctx.Err())
		}
	}
}

func (w *WorkflowRunner) attempt(ctx context.Context, client *http.Client, c *journey.CallStep, body []byte) (json.RawMessage, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return nil, false, fmt.Errorf("call: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, true, fmt.Errorf("call: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, callAnswerMax+1))
	switch {
	case err != nil:
		return nil, true, fmt.Errorf("call: reading the answer: %w", err)
	case resp.StatusCode >= 500:
		return nil, true, fmt.Errorf("call: http %d", resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return nil, false, fmt.Errorf("call: http %d", resp.StatusCode)
	case len(data) > callAnswerMax:
		return nil, false, errors.New("call: answer larger than 64 KiB")
	}
	var obj map[string]any
	if json.Unmarshal(data, &obj) != nil || obj == nil {
		return nil, false, errors.New("call: the answer is not a JSON object")
	}
	return data, false, nil
}
