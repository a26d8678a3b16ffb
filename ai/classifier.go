package ai

import (
	"math"
)

// classifier is a multinomial naive Bayes model over the intents' example
// phrases, with additive (Laplace/Lidstone) smoothing of smoothingAlpha. Add-one
// smoothing is too flat for a few short examples per intent over a vocabulary
// of hundreds of words: a sentence made of an intent's own words would get a
// posterior near 0.5.
//
// Its confidence is the posterior of the best intent times the share of the
// message's terms that the best intent has seen in its examples. The
// posterior alone always sums to one over the known intents, so it is high
// for a sentence that shares one word with one intent and none with the
// others; the coverage factor brings an off-topic sentence ("what's the
// weather on mars") down to near zero. Terms no intent has seen are left out
// of the posterior (they would only favour the intents with fewer words).
type classifier struct {
	intents  []string
	logPrior []float64
	logLike  []map[string]float64 // per intent: log P(term | intent) of seen terms
	logUnsee []float64            // per intent: log P(unseen term | intent)
	vocab    map[string]bool
}

const (
	// intentMatchMin is the confidence under which no intent is named.
	intentMatchMin = 0.2
	// smoothingAlpha is the pseudo-count of every vocabulary term per intent.
	smoothingAlpha = 0.1
)

func newClassifier(intents []Intent) *classifier {
	c := &classifier{vocab: make(map[string]bool)}
	counts := make([]map[string]float64, len(intents))
	totals := make([]float64, len(intents))
	examples := 0
	for i, in := range intents {
		counts[i] = make(map[string]float64)
		for _, ex := range in.Examples {
			for _, t := range tokens(nil, ex, math.MaxInt) {
				counts[i][t]++
				totals[i]++
				c.vocab[t] = true
			}
		}
		examples += len(in.Examples)
	}
	v := float64(len(c.vocab))
	for i, in := range intents {
		c.intents = append(c.intents, in.Name)
		c.logPrior = append(c.logPrior, math.Log(float64(len(in.Examples))/float64(examples)))
		like := make(map[string]float64, len(counts[i]))
		for t, n := range counts[i] {
			like[t] = math.Log((n + smoothingAlpha) / (totals[i] + smoothingAlpha*v))
		}
		c.logLike = append(c.logLike, like)
		c.logUnsee = append(c.logUnsee, math.Log(smoothingAlpha/(totals[i]+smoothingAlpha*v)))
	}
	return c
}

// classify returns the best intent's index and the confidence, or -1 and 0
// when the message shares no term with any example. scratch must hold one
// float64 per intent.
func (c *classifier) classify(terms []string, scratch []float64) (int, float64) {
	if len(c.intents) == 0 || len(terms) == 0 {
		return -1, 0
	}
	known := 0
	for i := range c.intents {
		scratch[i] = c.logPrior[i]
	}
	for _, t := range terms {
		if !c.vocab[t] {
			continue
		}
		known++
		for i, like := range c.logLike {
			if l, ok := like[t]; ok {
				scratch[i] += l
			} else {
				scratch[i] += c.logUnsee[i]
			}
		}
	}
	if known == 0 {
		return -1, 0
	}
	best := 0
	for i, s := range scratch {
		if s > scratch[best] {
			best = i
		}
	}
	sum := 0.0
	for _, s := range scratch {
		sum += math.Exp(s - scratch[best])
	}
	posterior := 1 / sum
	seen := 0
	for _, t := range terms {
		if _, ok := c.logLike[best][t]; ok {
			seen++
		}
	}
	coverage := float64(seen) / float64(len(terms))
	return best, posterior * math.Sqrt(coverage)
}
