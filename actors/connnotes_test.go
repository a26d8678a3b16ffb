package actors

import (
	"fmt"
	"testing"
	"unsafe"
)

func TestConnNotes(t *testing.T) {
	var n connNotes
	if got := n.of("chat"); got != 0 {
		t.Fatalf("empty: of(chat) = %d", got)
	}
	n.note("", 9)
	if got := n.of(""); got != 0 || n.first.channel != "" {
		t.Fatalf("a note without a channel was kept: of(\"\") = %d, %+v", got, n.first)
	}
	n.note("chat", 1)
	n.note("sms", 2)
	n.note("chat", 3)
	if a, b := n.of("chat"), n.of("sms"); a != 3 || b != 2 {
		t.Fatalf("of(chat), of(sms) = %d, %d; want 3, 2", a, b)
	}
	if got := n.of("voice"); got != 0 {
		t.Fatalf("of(voice) = %d, want 0", got)
	}
	// Up to lastConnMax channels are kept; the next forgets the others.
	for i := 2; i < lastConnMax; i++ {
		n.note(fmt.Sprintf("ch%d", i), uint64(10+i))
	}
	for i := 2; i < lastConnMax; i++ {
		if got := n.of(fmt.Sprintf("ch%d", i)); got != uint64(10+i) {
			t.Fatalf("of(ch%d) = %d, want %d", i, got, 10+i)
		}
	}
	if got := n.of("chat"); got != 3 {
		t.Fatalf("at the limit: of(chat) = %d, want 3", got)
	}
	n.note("one-too-many", 99)
	if a, b, c := n.of("one-too-many"), n.of("chat"), n.of("ch5"); a != 99 || b != 0 || c != 0 {
		t.Fatalf("past the limit: new %d, chat %d, ch5 %d; want 99, 0, 0", a, b, c)
	}
	if n.more != nil {
		t.Fatalf("past the limit %d others kept", len(*n.more))
	}
}

// The noted channel is the program's word, not the event's string: a note
// must not keep an event's memory alive.
func TestConnNotesIntern(t *testing.T) {
	var n connNotes
	ch := string([]byte("chat"))
	n.note(ch, 7)
	if n.first.channel != "chat" || n.of("chat") != 7 {
		t.Fatalf("note = %+v", n.first)
	}
	if unsafe.StringData(n.first.channel) == unsafe.StringData(ch) {
		t.Fatal("the note holds the event's string")
	}
	if testing.AllocsPerRun(100, func() { n.note(ch, 8) }) != 0 {
		t.Fatal("noting a known channel allocates")
	}
}
