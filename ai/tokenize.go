package ai

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// stopWords are dropped before classifying and searching: they say nothing
// about what a customer asks. Negations are not here on purpose ("not
// received" differs from "received"), but sentiment has its own tokenizer.
var stopWords = setOf(`a an the and or but if then so of to in on at by for with from
	about as into over under up down out off is am are was were be been being do does did
	doing have has had having i me my mine we us our you your yours he him his she her it its
	they them their this that these those there here what whats which who whom whose when
	where why how im ive id ill youre its thats theres can could would should will shall may
	might must just please also too very really any some all
	again still get got want need like would`)

func setOf(words string) map[string]bool {
	m := make(map[string]bool)
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

// tokens appends to dst the terms of text: lowercased runs of letters and
// digits (apostrophes dropped inside a word, so "what's" is "whats"), stop
// words removed, lightly stemmed. It stops after max terms.
func tokens(dst []string, text string, max int) []string {
	var buf [64]byte
	word := buf[:0]
	flush := func() bool {
		if len(word) == 0 {
			return true
		}
		w := string(word)
		word = word[:0]
		if stopWords[w] {
			return true
		}
		dst = append(dst, stem(w))
		return len(dst) < max
	}
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		i += size
		switch {
		case r < utf8.RuneSelf && ('a' <= r && r <= 'z' || '0' <= r && r <= '9'):
			word = append(word, byte(r))
		case r < utf8.RuneSelf && 'A' <= r && r <= 'Z':
			word = append(word, byte(r)+'a'-'A')
		case r == '\'' || r == '’':
			// inside a word: dropped; elsewhere: nothing to flush
		case r >= utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			word = utf8.AppendRune(word, unicode.ToLower(r))
		default:
			if !flush() {
				return dst
			}
		}
	}
	flush()
	return dst
}

// stem strips the commonest English suffixes: "ies" to "y", "s", "ing", "ed",
// then a final "e" and one of a doubled final consonant, so that "declined",
// "declines", "decline" and "declining" meet. It is light on purpose: a
// wrong merge costs more than a missed one on short customer messages.
func stem(w string) string {
	if len(w) <= 3 {
		return w
	}
	switch {
	case strings.HasSuffix(w, "ies") && len(w) > 4:
		return w[:len(w)-3] + "y"
	case strings.HasSuffix(w, "ss"), strings.HasSuffix(w, "us"), strings.HasSuffix(w, "is"):
	case strings.HasSuffix(w, "s"):
		w = w[:len(w)-1]
	}
	stripped := false
	switch {
	case strings.HasSuffix(w, "ing") && len(w) > 5:
		w, stripped = w[:len(w)-3], true
	case strings.HasSuffix(w, "ed") && len(w) > 4:
		w, stripped = w[:len(w)-2], true
	}
	if n := len(w); stripped && n > 3 && w[n-1] == w[n-2] && !strings.ContainsRune("lsz", rune(w[n-1])) {
		w = w[:n-1]
	}
	if n := len(w); n > 4 && w[n-1] == 'e' && w[n-2] != 'e' {
		w = w[:n-1]
	}
	return w
}
