package ai

import (
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSentiment(t *testing.T) {
	s := Sentiment
	checks := []struct {
		name string
		ok   bool
	}{
		{"positive is positive", s("the service was good") > 0.2},
		{"negative is negative", s("this is terrible") < -0.2},
		{"negation flips", s("the service was not good") < 0},
		{"negation reaches three words", s("it is not really that good") < 0},
		{"negation fades after three words", s("not that it matters but the app is good") > 0},
		{"don't flips", s("I don't love it") < 0},
		{"intensifier scales", s("very good") > s("good")},
		{"extremely scales more", s("extremely bad") < s("very bad")},
		{"slightly damps", s("slightly annoyed") > s("annoyed") && s("slightly annoyed") < 0},
		{"exclamation stresses", s("great!!!") > s("great")},
		{"exclamation stresses negatives too", s("awful!!") < s("awful")},
		{"caps stress", s("this is GREAT") > s("this is great")},
		{"positive emoji", s("thanks 😀") > s("thanks") && s("👍") > 0.2},
		{"negative emoji", s("😡😡") < -0.4 && s("👎") < 0},
		{"heart with variation selector", s("❤️") > 0.3},
		{"neutral text", math.Abs(s("I want to change my delivery address to 12 Main Street")) < 0.05},
		{"empty", s("") == 0},
		{"mixed", math.Abs(s("good but slow")) < s("good")},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s", c.name)
		}
	}
	angry := s("This is the WORST service ever, absolutely terrible and useless!!! 😡😡😡 I HATE it")
	happy := s("Amazing, thank you so much, you are wonderful!!! 😍👍")
	if angry < -1 || angry > -0.8 || happy > 1 || happy < 0.8 {
		t.Errorf("extremes: angry %.3f, happy %.3f; want strongly signed and inside [-1, 1]", angry, happy)
	}
}

func FuzzTokensAndSentiment(f *testing.F) {
	for _, s := range []string{
		"", "my card payment failed again", "NOT GOOD!!!", "😡👍❤️", "what's the weather on mars",
		"\xff\xfe", "ÄÖÜ straße ﬁ", strings.Repeat("very ", 300) + "good",
		"'''", "don’t", "İ", "a\u0301", "1.5% fee",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		v := Sentiment(text)
		if math.IsNaN(v) || v < -1 || v > 1 {
			t.Fatalf("Sentiment(%q) = %v, out of [-1, 1]", text, v)
		}
		toks := tokens(nil, text, QueryTokensMax)
		if len(toks) > QueryTokensMax {
			t.Fatalf("%d tokens, over the limit", len(toks))
		}
		for _, tok := range toks {
			if tok == "" || !utf8.ValidString(tok) {
				t.Fatalf("tokens(%q) has bad token %q", text, tok)
			}
		}
		got := Sentiment(text + " " + text)
		if math.IsNaN(got) || got < -1 || got > 1 {
			t.Fatalf("Sentiment of doubled %q = %v", text, got)
		}
	})
}
