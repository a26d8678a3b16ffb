package ai

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// Request is one bot turn's input.
type Request struct {
	Customer     string
	Conversation string
	Text         string         // the customer's latest message
	History      []Turn         // the conversation so far, oldest first, at most HistoryTurnsMax
	Profile      map[string]any // the customer's profile (read only)
}

// Turn is one message of a conversation.
type Turn struct {
	Role string // RoleCustomer, RoleBot or RoleAgent
	Text string
}

// Turn roles.
const (
	RoleCustomer = "customer"
	RoleBot      = "bot"
	RoleAgent    = "agent"
)

// Reply is what a brain answers.
type Reply struct {
	Text       string   // the answer to send the customer ("" when the brain has none)
	Intent     string   // best intent name, "" when none matched
	Confidence float64  // [0,1]: how likely Text answers the question
	Sentiment  float64  // [-1,1] of Request.Text
	Query      string   // the knowledge-search query used
	Articles   []string // ids of the articles searched out, best first (at most HitsMax); the first is the one used
	Brain      string   // BrainBuiltin, BrainOpenAI or BrainBuiltinFallback
	Fallback   string   // when Brain is BrainBuiltinFallback: why ("http 500", "timeout", ...)
}

// Reply.Brain values.
const (
	BrainBuiltin         = "builtin"
	BrainOpenAI          = "openai"
	BrainBuiltinFallback = "builtin_fallback"
)

// Brain answers a customer's message. Reply must be safe for concurrent use.
// It returns an error only for a request it refuses (ErrInvalidRequest) or a
// cancelled context; a failing language model is not an error (see OpenAI).
type Brain interface {
	Reply(ctx context.Context, req Request) (Reply, error)
}

// ErrInvalidRequest wraps every refusal of a Request.
var ErrInvalidRequest = errors.New("ai: invalid request")

func (r *Request) validate() error {
	if len(r.Text) > TextBytesMax {
		return fmt.Errorf("%w: text of %d bytes, more than %d (TextBytesMax)", ErrInvalidRequest, len(r.Text), TextBytesMax)
	}
	if len(r.History) > HistoryTurnsMax {
		return fmt.Errorf("%w: %d history turns, more than %d (HistoryTurnsMax)", ErrInvalidRequest, len(r.History), HistoryTurnsMax)
	}
	for i, t := range r.History {
		switch t.Role {
		case RoleCustomer, RoleBot, RoleAgent:
		default:
			return fmt.Errorf("%w: history turn %d: unknown role %q", ErrInvalidRequest, i+1, t.Role)
		}
		if len(t.Text) > TextBytesMax {
			return fmt.Errorf("%w: history turn %d: %d bytes, more than %d (TextBytesMax)", ErrInvalidRequest, i+1, len(t.Text), TextBytesMax)
		}
	}
	return nil
}

// New builds the brain cfg asks for: a Builtin, or an OpenAI that wraps one
// for retrieval and fallback. kb may be nil (no knowledge base).
func New(cfg Config, kb *Knowledge) (Brain, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	builtin, err := NewBuiltin(cfg.Intents, kb)
	if err != nil {
		return nil, err
	}
	if cfg.Brain.Kind != KindOpenAI {
		return builtin, nil
	}
	return NewOpenAI(*cfg.Brain.OpenAI, builtin, &http.Client{})
}
