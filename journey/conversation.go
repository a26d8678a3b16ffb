package journey

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Conversation states (PROTOCOL section 3).
const (
	StateBot      = "bot"
	StateWorkflow = "workflow"
	StateQueued   = "queued"
	StateOffered  = "offered"
	StateAgent    = "agent"
	StateCallback = "callback"
	StateClosed   = "closed"
)

// Conversation is the customer's conversation (PROTOCOL section 3): one at
// a time, moving across channels with the customer. A closed one stays
// until the next inbound message opens a new one that names it.
type Conversation struct {
	ID       string    `json:"id"`
	State    string    `json:"state"`
	Channel  string    `json:"channel,omitempty"`
	Queue    string    `json:"queue,omitempty"`
	Priority int       `json:"priority,omitempty"`
	Agent    string    `json:"agent,omitempty"`
	Since    time.Time `json:"since"` // when it entered State
	Opened   time.Time `json:"opened"`
	Previous string    `json:"previous,omitempty"` // the closed conversation it follows

	// What the bot did, for the hand-over summary; bounded.
	LastActivity time.Time `json:"last_activity"`
	Asked        string    `json:"asked,omitempty"`      // the customer's first message, cut to SummaryTextMax
	Intents      []string  `json:"intents,omitempty"`    // intents the bot recognised, newest last
	Articles     []string  `json:"articles,omitempty"`   // articles the bot showed, unique, newest last
	Sentiments   []float64 `json:"sentiments,omitempty"` // the customer's sentiment per bot turn, newest last
	BotTurns     int       `json:"bot_turns,omitempty"`
	Answered     uint64    `json:"answered,omitempty"` // seq of the latest customer message the bot answered

	// Routing (desk.go).
	Routed       bool      `json:"routed,omitempty"`   // it went to a queue: a due-work key marks it for restarts
	Kind         string    `json:"kind,omitempty"`     // in its queue: conversation or callback
	QueuedAt     time.Time `json:"queued_at,omitzero"` // when it started waiting (kept when an offer is revoked)
	OfferedTo    string    `json:"offered_to,omitempty"`
	OfferExpires time.Time `json:"offer_expires,omitzero"`
	Excluded     []string  `json:"excluded,omitempty"` // agents that declined it or let the offer lapse
}

// Limits of a conversation's bot memory.
const (
	SummaryTextMax          = 280 // characters of the customer's first message kept
	ConversationIntentsMax  = 8
	ConversationArticlesMax = 8
	SentimentTrendMax       = 8
)

// transitions lists the states each state may move to. Anything may close,
// and a closed conversation moves nowhere (the next message opens another).
var transitions = map[string][]string{
	StateBot:      {StateWorkflow, StateQueued, StateClosed},
	StateWorkflow: {StateBot, StateQueued, StateClosed},
	StateQueued:   {StateOffered, StateAgent, StateCallback, StateQueued, StateClosed},
	StateOffered:  {StateAgent, StateQueued, StateCallback, StateClosed},
	StateAgent:    {StateQueued, StateClosed},
	StateCallback: {StateQueued, StateOffered, StateAgent, StateClosed},
	StateClosed:   {},
}

// CanMove reports whether a conversation may move from one state to another.
func CanMove(from, to string) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Open reports whether the conversation is open (not nil, not closed).
func (cv *Conversation) Open() bool { return cv != nil && cv.State != StateClosed }

// Idles reports whether inactivity closes the conversation in its state:
// the bot's and a workflow's do; one waiting for or held by a person waits
// for routing to end it.
func (cv *Conversation) Idles() bool {
	return cv.Open() && (cv.State == StateBot || cv.State == StateWorkflow)
}

// ConversationID names the conversation opened by the event at seq; like an
// outbound id it leads back to its customer.
func ConversationID(customer string, seq uint64) string {
	return "cv-" + strconv.FormatUint(seq, 10) + "-" + customer
}

// OutboundID names the outbound of the message.sent at seq (PROTOCOL
// section 2): stable across redelivery, and it leads back to the customer.
func OutboundID(customer string, seq uint64) string {
	var buf [80]byte // one allocation, the string, for most ids (a broadcast makes three per target)
	b := strconv.AppendUint(append(buf[:0], "out-"...), seq, 10)
	return string(append(append(b, '-'), customer...))
}

// ParseOutboundID is the inverse of OutboundID.
func ParseOutboundID(id string) (customer string, seq uint64, ok bool) {
	return parseRef(id, "out-")
}

// ParseConversationID is the inverse of ConversationID.
func ParseConversationID(id string) (customer string, seq uint64, ok bool) {
	return parseRef(id, "cv-")
}

func parseRef(id, prefix string) (string, uint64, bool) {
	rest, ok := strings.CutPrefix(id, prefix)
	if !ok {
		return "", 0, false
	}
	digits, customer, ok := strings.Cut(rest, "-")
	if !ok || customer == "" || digits == "" || digits[0] == '0' {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || seq == 0 {
		return "", 0, false
	}
	return customer, seq, true
}

// Data of the conversation's events.
type conversationOpened struct {
	Conversation string `json:"conversation"`
	State        string `json:"state"`
	Asked        string `json:"asked,omitempty"` // the message that opened it, cut to SummaryTextMax
	Channel      string `json:"channel,omitempty"`
	Previous     string `json:"previous,omitempty"`
	Queue        string `json:"queue,omitempty"`
	Priority     int    `json:"priority,omitempty"`
}

type conversationClosed struct {
	Conversation string `json:"conversation"`
	Reason       string `json:"reason"`
}

// RoutingDecided is the data of routing.decided (PROTOCOL sections 1, 4):
// why the conversation goes where it goes.
type RoutingDecided struct {
	Conversation string   `json:"conversation"`
	Rule         string   `json:"rule,omitempty"`   // the bare rule id, when a rule routed
	Reason       string   `json:"reason,omitempty"` // otherwise why
	Queue        string   `json:"queue"`
	Priority     int      `json:"priority"`
	BypassBot    bool     `json:"bypass_bot,omitempty"`
	Deferred     bool     `json:"deferred,omitempty"` // a rule's route without bypass_bot while the bot holds the conversation: where the bot hands over
	Summary      *Summary `json:"summary,omitempty"`
	Kind         string   `json:"kind,omitempty"`      // callback for a callback task; else a conversation
	Broadcast    string   `json:"broadcast,omitempty"` // the broadcast whose resolve queued the callback
}

// Hand-over reasons of routing.decided (data.reason).
const (
	ReasonLowConfidence  = "low_confidence"
	ReasonAskedHuman     = "customer_asked"
	ReasonFrustration    = "frustration"
	ReasonBlockedTopic   = "blocked_topic"
	ReasonBotFailed      = "bot_failed"
	ReasonRule           = "rule"
	ReasonInactive       = "inactive"
	ReasonWorkflow       = "workflow"
	ReasonWorkflowFailed = "workflow_failed"
)

// Summary rides with a hand-over: what the customer wants, what the bot
// tried and which articles it showed, and how the customer felt.
type Summary struct {
	Asked     string    `json:"asked,omitempty"`
	Intent    string    `json:"intent,omitempty"`
	BotTurns  int       `json:"bot_turns"`
	Articles  []string  `json:"articles,omitempty"`
	Sentiment []float64 `json:"sentiment,omitempty"` // per turn, oldest first
	Trend     string    `json:"trend,omitempty"`     // "falling", "rising", "steady"
}

// applyConversation moves the conversation by one applied event.
func (c *Customer) applyConversation(e *Event) {
	cv := c.Conversation
	if cv.Open() && (e.Type == TypeMessageReceived || e.Type == TypeMessageSent) {
		cv.LastActivity = e.RecordedAt
		if e.Type == TypeMessageReceived && e.Channel != "" && e.Channel != cv.Channel {
			cv.Channel = Intern(e.Channel) // the conversation moves with the customer
		}
		if e.Type == TypeMessageReceived && cv.Asked == "" {
			cv.Asked = strings.Clone(cut(e.Text, SummaryTextMax)) // not the event's string block
		}
	}
	switch e.Type {
	case TypeConversationOpened:
		var d conversationOpened
		if json.Unmarshal(e.Data, &d) != nil {
			return
		}
		c.Conversation = &Conversation{
			ID: d.Conversation, State: d.State, Channel: d.Channel, Previous: d.Previous,
			Queue: d.Queue, Priority: d.Priority, Asked: d.Asked,
			Since: e.RecordedAt, Opened: e.RecordedAt, LastActivity: e.RecordedAt,
		}
	case TypeConversationClosed:
		c.moveConversation(e, StateClosed)
	case TypeRoutingDecided:
		var d RoutingDecided
		if json.Unmarshal(e.Data, &d) != nil || !cv.Open() || cv.ID != d.Conversation {
			return
		}
		cv.Queue, cv.Priority = d.Queue, d.Priority
		if !d.Deferred {
			c.moveConversation(e, StateQueued)
		}
	case TypeAIReplied:
		var d aiReplied
		if json.Unmarshal(e.Data, &d) != nil || !cv.Open() || cv.ID != d.Conversation {
			return
		}
		cv.BotTurns++
		cv.Answered = max(cv.Answered, d.InReplyTo)
		if d.Intent != "" {
			cv.Intents = pushBounded(cv.Intents, d.Intent, ConversationIntentsMax)
		}
		cv.Sentiments = pushBounded(cv.Sentiments, d.Sentiment, SentimentTrendMax)
		for _, a := range d.Articles {
			if !contains(cv.Articles, a) {
				cv.Articles = pushBounded(cv.Articles, a, ConversationArticlesMax)
			}
		}
	}
	c.applyRouting(e)
}

// moveConversation changes the open conversation's state when the event is
// about it (data.conversation, when given, is its id) and the move is
// allowed; events that would break the state machine change nothing. It
// reports whether the conversation is now in state to.
func (c *Customer) moveConversation(e *Event, to string) bool {
	cv := c.Conversation
	if !cv.Open() || (cv.State != to && !CanMove(cv.State, to)) {
		return false
	}
	var d struct {
		Conversation string `json:"conversation"`
	}
	if json.Unmarshal(e.Data, &d) == nil && d.Conversation != "" && d.Conversation != cv.ID {
		return false
	}
	if cv.State != to {
		cv.State, cv.Since = to, e.RecordedAt
	}
	return true
}

// agentOf is the agent named by an agent.* event: data.agent, else the
// actor's agent id.
func agentOf(e *Event) string {
	var d struct {
		Agent string `json:"agent"`
	}
	if json.Unmarshal(e.Data, &d) == nil && d.Agent != "" {
		return d.Agent
	}
	a, _ := strings.CutPrefix(e.Actor, ActorAgentPrefix)
	return a
}

// summary is the hand-over summary of the open conversation.
func (cv *Conversation) summary() *Summary {
	s := &Summary{Asked: cv.Asked, BotTurns: cv.BotTurns,
		Articles: append([]string(nil), cv.Articles...), Sentiment: append([]float64(nil), cv.Sentiments...)}
	if n := len(cv.Intents); n > 0 {
		s.Intent = cv.Intents[n-1]
	}
	s.Trend = trend(cv.Sentiments)
	return s
}

// trend reads the last three sentiments: falling when each is lower than
// the one before, rising when higher, else steady; "" with fewer than three.
func trend(s []float64) string {
	if len(s) < 3 {
		return ""
	}
	last := s[max(len(s)-3, 0):]
	falling, rising := true, true
	for i := 1; i < len(last); i++ {
		falling = falling && last[i] < last[i-1]
		rising = rising && last[i] > last[i-1]
	}
	switch {
	case falling:
		return "falling"
	case rising:
		return "rising"
	}
	return "steady"
}

func pushBounded[T any](s []T, v T, n int) []T {
	if len(s) >= n {
		s = append(s[:0], s[len(s)-n+1:]...)
	}
	return append(s, v)
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// cut is s cut to at most n runes.
func cut(s string, n int) string {
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}
