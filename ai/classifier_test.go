package ai

import (
	"context"
	"math"
	"strings"
	"testing"
)

// keywordBaseline picks the intent whose examples share the most distinct
// words (lowercased, split on non-letters, no stemming or stop words) with
// the text; the first such intent on a tie, "" when none shares any.
func keywordBaseline(intents []Intent, text string) string {
	words := func(s string) map[string]bool {
		m := make(map[string]bool)
		for _, w := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
			return !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '\'')
		}) {
			m[w] = true
		}
		return m
	}
	in := words(text)
	best, bestN := "", 0
	for _, it := range intents {
		seen := words(strings.Join(it.Examples, " "))
		n := 0
		for w := range in {
			if seen[w] {
				n++
			}
		}
		if n > bestN {
			best, bestN = it.Name, n
		}
	}
	return best
}

func TestClassifierBeatsKeywordBaseline(t *testing.T) {
	intents := loadDemoIntents(t)
	cls := newClassifier(intents)
	set := loadHeldOut(t)
	if len(set) < 40 {
		t.Fatalf("held-out set has %d sentences, want at least 40", len(set))
	}
	examples := make(map[string]bool)
	for _, in := range intents {
		for _, ex := range in.Examples {
			examples[strings.ToLower(ex)] = true
		}
	}
	scratch := make([]float64, len(intents))
	okNB, okBase := 0, 0
	for _, l := range set {
		if examples[strings.ToLower(l.text)] {
			t.Fatalf("held-out sentence %q is a training example", l.text)
		}
		i, _ := cls.classify(tokens(nil, l.text, QueryTokensMax), scratch)
		if i >= 0 && intents[i].Name == l.intent {
			okNB++
		} else {
			name := ""
			if i >= 0 {
				name = intents[i].Name
			}
			t.Logf("classifier: %q: got %q, want %q", l.text, name, l.intent)
		}
		if keywordBaseline(intents, l.text) == l.intent {
			okBase++
		}
	}
	accNB := float64(okNB) / float64(len(set))
	accBase := float64(okBase) / float64(len(set))
	t.Logf("naive Bayes accuracy %.3f (%d/%d), keyword baseline accuracy %.3f (%d/%d)",
		accNB, okNB, len(set), accBase, okBase, len(set))
	if accNB <= accBase {
		t.Errorf("classifier accuracy %.3f does not beat the keyword baseline %.3f", accNB, accBase)
	}
	if accNB < 0.8 {
		t.Errorf("classifier accuracy %.3f, want at least 0.8", accNB)
	}
}

func TestClassifierConfidenceMeansSomething(t *testing.T) {
	b := demoBuiltin(t)
	scratch := make([]float64, len(b.intents))
	conf := func(text string) (string, float64) {
		i, c := b.cls.classify(tokens(nil, text, QueryTokensMax), scratch)
		if i < 0 {
			return "", c
		}
		return b.intents[i].Name, c
	}
	for _, text := range []string{
		"what's the weather on mars",
		"tell me a joke about penguins",
		"quantum chromodynamics lecture notes",
	} {
		if name, c := conf(text); c >= 0.3 {
			t.Errorf("%q: intent %q with confidence %.2f, want < 0.3 for an off-topic sentence", text, name, c)
		}
	}
	for text, want := range map[string]string{
		"my card was declined at the shop": "card_declined",
		"I forgot my password":             "reset_password",
		"when will my parcel arrive":       "delivery",
		"is there a monthly fee":           "fees",
	} {
		name, c := conf(text)
		if name != want || c <= 0.7 {
			t.Errorf("%q: intent %q with confidence %.2f, want %q above 0.7", text, name, c, want)
		}
	}
}

func TestTokens(t *testing.T) {
	got := strings.Join(tokens(nil, "What's the STATUS of my Declined payments? I'm shipping, it's delivered!", 100), " ")
	want := "status declin payment ship deliver"
	if got != want {
		t.Errorf("tokens: got %q, want %q", got, want)
	}
	for _, forms := range [][]string{
		{"decline", "declined", "declines", "declining"},
		{"charge", "charged", "charges", "charging"},
		{"delivery", "deliveries"},
		{"address", "addresses"},
		{"ship", "shipped", "shipping"},
	} {
		for _, f := range forms[1:] {
			if stem(f) != stem(forms[0]) {
				t.Errorf("stem(%q) = %q, stem(%q) = %q: want equal", f, stem(f), forms[0], stem(forms[0]))
			}
		}
	}
	if n := len(tokens(nil, strings.Repeat("card ", 1000), QueryTokensMax)); n != QueryTokensMax {
		t.Errorf("tokens kept %d terms, want the limit %d", n, QueryTokensMax)
	}
}

func TestIntentNamedOnlyWhenConfident(t *testing.T) {
	b := demoBuiltin(t)
	r, err := b.Reply(context.Background(), Request{Text: "what's the weather on mars"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Intent != "" {
		t.Errorf("off-topic sentence got intent %q", r.Intent)
	}
	r, _ = b.Reply(context.Background(), Request{Text: "hello there!"})
	if r.Intent != "greeting" || !strings.HasPrefix(r.Text, "Hello!") || r.Confidence < 0.5 {
		t.Errorf("greeting: got %+v, want the canned answer", r)
	}
	if math.IsNaN(r.Confidence) {
		t.Error("NaN confidence")
	}
}
