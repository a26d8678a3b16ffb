package ai

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestDemoAnswers(t *testing.T) {
	b := demoBuiltin(t)
	for _, c := range []struct{ text, intent, article string }{
		{"my card payment failed again", "card_declined", "card-declined"},
		{"I forgot my password and my account is locked", "reset_password", "reset-password"},
		{"how do I get a refund for a damaged item", "refund", "refund-policy"},
		{"where is my parcel, it has not arrived", "delivery", "delivery-times"},
		{"are you open on saturday", "opening_hours", "opening-hours"},
		{"I moved, how do I change my address", "update_address", "update-address"},
		{"how much is the foreign currency fee", "fees", "fees"},
	} {
		r, err := b.Reply(context.Background(), Request{Text: c.text})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%q -> %s %.2f %v %q", c.text, r.Intent, r.Confidence, r.Articles, r.Text)
		if r.Intent != c.intent || len(r.Articles) == 0 || r.Articles[0] != c.article || r.Confidence < 0.55 {
			t.Errorf("%q: intent %q, articles %v, confidence %.2f; want %s, %s first, at least 0.55",
				c.text, r.Intent, r.Articles, r.Confidence, c.intent, c.article)
		}
		if !strings.HasSuffix(r.Text, "(see article "+c.article+")") || len(r.Text) > AnswerTextBytesMax {
			t.Errorf("%q: answer %q (%d bytes) does not cite %s within %d bytes", c.text, r.Text, len(r.Text), c.article, AnswerTextBytesMax)
		}
		if r.Brain != BrainBuiltin || r.Query != c.text || len(r.Articles) > HitsMax {
			t.Errorf("%q: reply %+v", c.text, r)
		}
	}
	for _, text := range []string{"what's the weather on mars", "who won the football match yesterday", ""} {
		r, _ := b.Reply(context.Background(), Request{Text: text})
		t.Logf("%q -> %s %.2f %v %q", text, r.Intent, r.Confidence, r.Articles, r.Text)
		if r.Confidence >= 0.55 {
			t.Errorf("%q: confidence %.2f, want < 0.55", text, r.Confidence)
		}
	}
	r, _ := b.Reply(context.Background(), Request{Text: "what's the weather on mars"})
	if r.Confidence >= 0.3 || r.Text != notSureText {
		t.Errorf("off-topic: %+v, want the not-sure answer under 0.3", r)
	}
}

func TestCardDeclinedAnswerUsesTheRelevantParagraph(t *testing.T) {
	b := demoBuiltin(t)
	r, _ := b.Reply(context.Background(), Request{Text: "I got a text message about a security block on my card"})
	if len(r.Articles) == 0 || r.Articles[0] != "card-declined" || !strings.Contains(r.Text, "Reply YES") {
		t.Errorf("got %q from %v, want the security-block paragraph of card-declined", r.Text, r.Articles)
	}
}

func TestFollowUpUsesPreviousMessage(t *testing.T) {
	b := demoBuiltin(t)
	r, _ := b.Reply(context.Background(), Request{
		Text:    "and on sundays?",
		History: []Turn{{RoleCustomer, "what time does the branch open"}, {RoleBot, "9 am"}},
	})
	if len(r.Articles) == 0 || r.Articles[0] != "opening-hours" || !strings.Contains(r.Query, "branch") {
		t.Errorf("follow-up: query %q, articles %v; want the previous message searched too", r.Query, r.Articles)
	}
}

func TestReplyRefusesBadRequests(t *testing.T) {
	b := demoBuiltin(t)
	for name, req := range map[string]Request{
		"long text":    {Text: strings.Repeat("x", TextBytesMax+1)},
		"long history": {Text: "hi", History: make([]Turn, HistoryTurnsMax+1)},
		"bad role":     {Text: "hi", History: []Turn{{Role: "robot", Text: "beep"}}},
	} {
		if _, err := b.Reply(context.Background(), req); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: err = %v, want ErrInvalidRequest", name, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Reply(ctx, Request{Text: "hi"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
}

func TestBuiltinWithoutKnowledge(t *testing.T) {
	b, err := NewBuiltin(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := b.Reply(context.Background(), Request{Text: "my card was declined"})
	if err != nil || r.Confidence >= 0.3 || r.Intent != "" {
		t.Errorf("got %+v, %v; want a low-confidence reply", r, err)
	}
}

func TestTruncateText(t *testing.T) {
	s := "First sentence here. Second sentence is much longer than the first one."
	if got := truncateText(s, 36); got != "First sentence here." {
		t.Errorf("got %q", got)
	}
	if got := truncateText("word word word word", 12); got != "word word…" {
		t.Errorf("got %q", got)
	}
	if got := truncateText("ééééééééé", 8); len(got) > 8 || !strings.HasSuffix(got, "…") {
		t.Errorf("got %q", got)
	}
}

func BenchmarkBuiltinReply(b *testing.B) {
	brain := demoBuiltin(b)
	texts := []string{
		"my card payment failed again",
		"I forgot my password and my account is locked",
		"what's the weather on mars",
		"hello there",
		"how much is the foreign currency fee",
	}
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := brain.Reply(ctx, Request{Text: texts[i%len(texts)]}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestBuiltinConcurrentReplies(t *testing.T) {
	b := demoBuiltin(t)
	want, _ := b.Reply(context.Background(), Request{Text: "my card payment failed again"})
	done := make(chan Reply)
	for range 8 {
		go func() {
			var r Reply
			for range 50 {
				r, _ = b.Reply(context.Background(), Request{Text: "my card payment failed again"})
			}
			done <- r
		}()
	}
	for range 8 {
		if r := <-done; r.Text != want.Text || r.Confidence != want.Confidence {
			t.Errorf("concurrent reply %+v differs from %+v", r, want)
		}
	}
}
