package ai

import "time"

// Limits. Each one bounds something that grows with input or configuration.
const (
	// ArticlesMax is the most articles a knowledge base may hold.
	ArticlesMax = 2000
	// ArticleBytesMax is the largest article file accepted.
	ArticleBytesMax = 64 << 10
	// IntentsMax is the most intents a classifier may have.
	IntentsMax = 200
	// ExamplesPerIntentMax is the most example phrases one intent may have.
	ExamplesPerIntentMax = 100
	// ExampleBytesMax is the longest example phrase.
	ExampleBytesMax = 500
	// AnswerBytesMax is the longest canned answer.
	AnswerBytesMax = 2000
	// IntentNameBytesMax is the longest intent name.
	IntentNameBytesMax = 64

	// TextBytesMax is the longest customer message a brain accepts (the
	// event's own limit is larger; a message this long is not a question).
	TextBytesMax = 16 << 10
	// HistoryTurnsMax is the most turns a Request may carry.
	HistoryTurnsMax = 20
	// QueryTokensMax is the most tokens of a message that are classified and
	// searched; the rest are ignored.
	QueryTokensMax = 48
	// HitsMax is the most articles a reply names.
	HitsMax = 3
	// AnswerTextBytesMax bounds the text the builtin builds from an article.
	AnswerTextBytesMax = 400

	// PromptHistoryTurnsMax is the most history turns sent to a language model.
	PromptHistoryTurnsMax = 12
	// PromptTurnBytesMax bounds each history turn sent to a language model.
	PromptTurnBytesMax = 1000
	// PromptArticleBytesMax bounds each article body sent to a language model.
	PromptArticleBytesMax = 2000
	// ResponseBytesMax is the most bytes read from a language model's response.
	ResponseBytesMax = 1 << 20
	// ReplyTextBytesMax bounds the answer taken from a language model.
	ReplyTextBytesMax = 4000

	// RetriesMax is the most extra attempts an openai brain may be configured with.
	RetriesMax = 5
	// TimeoutMax is the longest per-attempt timeout accepted.
	TimeoutMax = 2 * time.Minute
	// TimeoutDefault is the per-attempt timeout when none is configured.
	TimeoutDefault = 5 * time.Second
	// RetriesDefault is the number of retries when the YAML omits it.
	RetriesDefault = 1
	// backoffBase is the pause before the first retry; it doubles after each.
	backoffBase = 50 * time.Millisecond
	// backoffMax caps the pause between retries.
	backoffMax = 1 * time.Second
)
