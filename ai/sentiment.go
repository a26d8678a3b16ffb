package ai

import (
	"math"
	"unicode"
	"unicode/utf8"
)

// Sentiment scoring constants (after VADER, Hutto and Gilbert 2014).
const (
	negationReach     = 3 // words after a negation that it flips
	negationScale     = -0.74
	intensifierReach  = 2    // words after an intensifier that it scales
	capsScale         = 1.25 // an ALL-CAPS sentiment word in a mixed-case text
	exclaimStep       = 0.3  // added per "!" in the direction of the total
	exclaimMax        = 4    // "!" counted at most
	sentimentAlpha    = 15   // normalization: s / sqrt(s² + alpha)
	sentimentWordsMax = 256  // words scored; the rest are ignored
)

// sentimentWord is one scanned unit of a text: a word or an emoji.
type sentimentWord struct {
	text  string
	caps  bool    // all letters upper case, at least two
	emoji float64 // an emoji's valence; text is empty
}

// Sentiment scores text from -1 (very negative) to 1 (very positive); 0 is
// neutral. It sums lexicon valences, flipping those within negationReach
// words after a negation ("not good"), scaling those after an intensifier
// ("very", "slightly"), stressing ALL-CAPS words and "!", and normalizes the
// sum to [-1, 1].
func Sentiment(text string) float64 {
	var buf [32]sentimentWord
	words, exclaims, allCaps := scanSentiment(buf[:0], text)
	total := 0.0
	negatedUntil, intensifiedUntil := -1, -1
	scale := 1.0
	for i, w := range words {
		if w.text == "" {
			total += w.emoji
			continue
		}
		if negations[w.text] {
			negatedUntil = i + negationReach
			continue
		}
		if s, ok := intensifiers[w.text]; ok {
			scale, intensifiedUntil = s, i+intensifierReach
			continue
		}
		v, ok := lexicon[w.text]
		if !ok {
			continue
		}
		if i <= intensifiedUntil {
			v *= scale
			intensifiedUntil = -1
		}
		if w.caps && !allCaps {
			v *= capsScale
		}
		if i <= negatedUntil {
			v *= negationScale
		}
		total += v
	}
	if total != 0 {
		e := float64(min(exclaims, exclaimMax)) * exclaimStep
		total += math.Copysign(e, total)
	}
	return total / math.Sqrt(total*total+sentimentAlpha)
}

// scanSentiment splits text into words (lowercased, apostrophes dropped) and
// scored emoji, counts "!", and tells whether every cased word is ALL CAPS.
func scanSentiment(dst []sentimentWord, text string) ([]sentimentWord, int, bool) {
	var word [48]byte
	n, upper, lower, exclaims := 0, 0, 0, 0
	capsWords, casedWords := 0, 0
	flush := func() {
		if n > 0 && len(dst) < sentimentWordsMax {
			caps := upper >= 2 && lower == 0
			if upper+lower > 0 {
				casedWords++
			}
			if caps {
				capsWords++
			}
			dst = append(dst, sentimentWord{text: string(word[:n]), caps: caps})
		}
		n, upper, lower = 0, 0, 0
	}
	for _, r := range text {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if unicode.IsUpper(r) {
				upper++
			} else if unicode.IsLower(r) {
				lower++
			}
			if l := utf8.RuneLen(unicode.ToLower(r)); l > 0 && n+l <= len(word) {
				n += utf8.EncodeRune(word[n:], unicode.ToLower(r))
			}
		case r == '\'' || r == '’':
		default:
			flush()
			if r == '!' {
				exclaims++
			} else if v, ok := emojiScores[r]; ok && len(dst) < sentimentWordsMax {
				dst = append(dst, sentimentWord{emoji: v})
			}
		}
	}
	flush()
	return dst, exclaims, casedWords > 0 && capsWords == casedWords
}
