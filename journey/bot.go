package journey

import (
	"strings"
	"unicode"
)

// BotRequest asks the bot for a turn: an effect the customer actor hands to
// the bot pool at once (a brain is slow; the customer never waits for it).
// The answer comes back as a BotResult input.
type BotRequest struct {
	Customer     string
	Conversation string
	InReplyTo    uint64 // seq of the customer's message
	Text         string
	History      []BotTurn // this conversation's messages before Text, oldest first
	Profile      map[string]any
}

// BotTurn is one message of a conversation as the bot sees it.
type BotTurn struct {
	Role string // "customer", "bot" or "agent"
	Text string
}

// BotHistoryMax bounds the turns sent to the bot.
const BotHistoryMax = 20

// BotResult is the bot's answer to a BotRequest.
type BotResult struct {
	Conversation string
	InReplyTo    uint64
	Text         string
	Intent       string
	Confidence   float64
	Sentiment    float64
	Query        string
	Articles     []string
	Brain        string
	Fallback     string
	Err          string // the brain failed: hand over
}

func (*BotResult) isInput() {}
func (*Receipt) isInput()   {}

// IntentUnknown is ai.replied's data.intent when no intent matched: the
// field is always there (PROTOCOL section 1).
const IntentUnknown = "unknown"

// aiReplied is the data of ai.replied.
type aiReplied struct {
	Conversation string   `json:"conversation"`
	InReplyTo    uint64   `json:"in_reply_to"`
	Intent       string   `json:"intent"` // IntentUnknown when none matched (PROTOCOL section 1)
	Confidence   float64  `json:"confidence"`
	Sentiment    float64  `json:"sentiment"`
	Articles     []string `json:"articles"`
	Brain        string   `json:"brain,omitempty"`
	Fallback     string   `json:"fallback,omitempty"`
	Escalated    string   `json:"escalated,omitempty"` // the hand-over reason when the bot did not answer
	Outbound     string   `json:"outbound,omitempty"`
}

type kbSearched struct {
	Conversation string   `json:"conversation"`
	Query        string   `json:"query"`
	Articles     []string `json:"articles"`
}

// humanPhrases are ways customers ask for a person (PROTOCOL section 6):
// the bot hands over whatever its confidence. Matched on whole words of
// the lowercased message.
var humanPhrases = [][]string{
	{"agent"}, {"human"}, {"person"}, {"representative"}, {"operator"},
	{"real", "people"}, {"someone", "real"}, {"somebody", "real"},
	{"talk", "to", "someone"}, {"speak", "to", "someone"}, {"speak", "with", "someone"},
	{"talk", "to", "somebody"}, {"speak", "to", "somebody"},
	{"customer", "service"}, {"live", "support"}, {"live", "chat"}, {"staff", "member"},
	{"manager"}, {"supervisor"},
}

// notHuman are words that, right before a person-word, mean the customer
// is not asking for one ("no agent", "not a human").
var notHuman = map[string]bool{"no": true, "not": true, "don't": true, "dont": true, "without": true, "never": true}

// WantsHuman reports whether a message asks for a person: "agent", "a
// human", "I want to talk to a person", "representative please", "can I
// speak to someone real".
func WantsHuman(text string) bool {
	// A negation holds within its clause: "that did not help, human please".
	for _, clause := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return strings.ContainsRune(".,;:!?\n", r)
	}) {
		if clauseWantsHuman(clause) {
			return true
		}
	}
	return false
}

func clauseWantsHuman(clause string) bool {
	words := strings.FieldsFunc(clause, func(r rune) bool {
		return !unicode.IsLetter(r) && r != '\''
	})
	for i := range words {
		for _, p := range humanPhrases {
			if i+len(p) > len(words) || !matchWords(words[i:], p) {
				continue
			}
			if negated(words, i) {
				continue
			}
			return true
		}
	}
	return false
}

func matchWords(words, phrase []string) bool {
	for j, w := range phrase {
		if strings.TrimSuffix(words[j], "s") != w && words[j] != w {
			return false
		}
	}
	return true
}

// negated: one of the two words before i (skipping "a", "an", "the")
// negates.
func negated(words []string, i int) bool {
	for j, n := i-1, 0; j >= 0 && n < 2; j-- {
		switch words[j] {
		case "a", "an", "the", "real", "live":
			continue
		}
		if notHuman[words[j]] {
			return true
		}
		n++
	}
	return false
}
