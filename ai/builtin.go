package ai

import (
	"context"
	"math"
	"strings"
)

// notSureText is the builtin's answer when nothing in the knowledge base matches.
const notSureText = "I'm not sure I can answer that. Could you say it another way, or ask for an agent?"

// Confidence thresholds of the builtin.
const (
	// cannedAnswerMin is the intent confidence from which an intent's canned
	// answer is used rather than the knowledge base.
	cannedAnswerMin = 0.5
	// notSureConfidenceMax caps the confidence of a reply with no article.
	notSureConfidenceMax = 0.15
)

// Builtin is the local brain: naive Bayes intents, BM25 knowledge search and
// lexicon sentiment, all precomputed at construction. Safe for concurrent use.
type Builtin struct {
	kb            *Knowledge
	intents       []Intent
	cls           *classifier
	intentArticle []string // per intent: the article its examples find first, "" for none
}

// NewBuiltin trains the classifier on intents and indexes nothing more: kb is
// already indexed. kb may be nil.
func NewBuiltin(intents []Intent, kb *Knowledge) (*Builtin, error) {
	if err := validateIntents(intents); err != nil {
		return nil, err
	}
	if kb == nil {
		kb, _ = newKnowledge(nil)
	}
	b := &Builtin{kb: kb, intents: intents, cls: newClassifier(intents)}
	for _, in := range intents {
		var terms []string
		for _, ex := range in.Examples {
			terms = tokens(terms, ex, math.MaxInt)
		}
		id := ""
		if hits := kb.search(terms, 1); len(hits) > 0 {
			id = hits[0].ID
		}
		b.intentArticle = append(b.intentArticle, id)
	}
	return b, nil
}

// Knowledge is the knowledge base the builtin searches.
func (b *Builtin) Knowledge() *Knowledge { return b.kb }

// Reply answers req from a canned intent answer or the knowledge base.
//
// Confidence: with a canned answer, the intent's confidence. From the
// knowledge base, the retrieval quality q (the top hit's score over the
// query's ideal score, weighted by its margin over the runner-up: q =
// ratio*(0.4+0.6*margin)), raised by up to half the rest when the intent's
// own examples lead to the same article (q+(1-q)*intent/2) and lowered by up
// to half when a confident intent points elsewhere (q*(1-intent/2)).
func (b *Builtin) Reply(ctx context.Context, req Request) (Reply, error) {
	if err := req.validate(); err != nil {
		return Reply{}, err
	}
	if err := ctx.Err(); err != nil {
		return Reply{}, err
	}
	return b.reply(req), nil
}

func (b *Builtin) reply(req Request) Reply {
	r := Reply{Brain: BrainBuiltin, Sentiment: Sentiment(req.Text)}
	var termBuf [QueryTokensMax]string
	terms := tokens(termBuf[:0], req.Text, QueryTokensMax)
	var scoreBuf [16]float64
	scratch := scoreBuf[:0]
	if len(b.intents) > len(scoreBuf) {
		scratch = make([]float64, len(b.intents))
	}
	intent, iconf := b.cls.classify(terms, scratch[:len(b.intents)])
	if intent >= 0 && iconf >= intentMatchMin {
		r.Intent = b.intents[intent].Name
	} else {
		intent, iconf = -1, 0
	}
	if intent >= 0 && b.intents[intent].Answer != "" && iconf >= cannedAnswerMin {
		r.Text, r.Confidence = b.intents[intent].Answer, iconf
		return r
	}
	r.Query = req.Text
	if len(terms) < 2 {
		// A short follow-up ("and for cards?") is searched with the
		// customer's previous message.
		if prev := previousCustomerText(req); prev != "" {
			r.Query = prev + " " + req.Text
			terms = tokens(termBuf[:0], r.Query, QueryTokensMax)
		}
	}
	hits := b.kb.search(terms, HitsMax)
	if len(hits) == 0 {
		r.Text, r.Confidence = notSureText, min(notSureConfidenceMax, iconf*0.3)
		return r
	}
	for _, h := range hits {
		r.Articles = append(r.Articles, h.ID)
	}
	r.Confidence = b.retrievalConfidence(terms, hits, intent, iconf)
	r.Text = b.answerFrom(hits[0].ID, terms)
	return r
}

func (b *Builtin) retrievalConfidence(terms []string, hits []Hit, intent int, iconf float64) float64 {
	top := hits[0].Score
	ratio := 1.0
	if ideal := b.kb.idealScore(terms); ideal > 0 {
		ratio = min(1, top/ideal)
	}
	margin := 1.0
	if len(hits) > 1 {
		margin = (top - hits[1].Score) / top
	}
	q := ratio * (0.4 + 0.6*margin)
	switch {
	case intent < 0:
		return q
	case b.intentArticle[intent] == hits[0].ID:
		return q + (1-q)*0.5*iconf
	default:
		return q * (1 - 0.5*iconf)
	}
}

func previousCustomerText(req Request) string {
	for i := len(req.History) - 1; i >= 0; i-- {
		t := req.History[i]
		if t.Role == RoleCustomer && t.Text != req.Text {
			return t.Text
		}
	}
	return ""
}

// answerFrom builds a short answer from the article's paragraph that best
// matches terms (and the next one when it is short), citing the article.
func (b *Builtin) answerFrom(id string, terms []string) string {
	doc := b.kb.byID[id]
	a := b.kb.articles[doc]
	cite := " (see article " + id + ")"
	if len(a.Paragraphs) == 0 {
		return a.Title + cite
	}
	p := b.kb.bestParagraph(doc, terms)
	text := a.Paragraphs[p]
	if len(text) < AnswerTextBytesMax/3 && p+1 < len(a.Paragraphs) {
		text += " " + a.Paragraphs[p+1]
	}
	return truncateText(text, AnswerTextBytesMax-len(cite)) + cite
}

// truncateText cuts text to at most max bytes, at the end of a sentence when
// one ends in the second half, else at a word with an ellipsis.
func truncateText(text string, max int) string {
	if len(text) <= max {
		return text
	}
	cut := text[:max]
	if i := strings.LastIndexAny(cut, ".!?"); i >= max/2 {
		return cut[:i+1]
	}
	if i := strings.LastIndexByte(text[:max-len("…")+1], ' '); i > 0 {
		return cut[:i] + "…"
	}
	return validUTF8Prefix(cut[:max-len("…")]) + "…"
}

func validUTF8Prefix(s string) string {
	return strings.ToValidUTF8(s, "")
}
