package actors

import (
	"context"
	"testing"
	"time"
)

// The runner's queue holds at most analyticsQueueMax items: past it push
// refuses (the events are dropped and read back later) and pushWait waits
// until the runner takes the items; the runner is woken once per run of
// pushes into an empty queue, and a closed queue takes nothing.
func TestAnalyticsQueueBoundWakeAndClose(t *testing.T) {
	q := analyticsQueue{wake: make(chan struct{}, 1)}
	for i := range analyticsQueueMax {
		if !q.push(analyticsMsg{partition: i}) {
			t.Fatalf("push %d refused below the bound", i)
		}
	}
	if q.push(analyticsMsg{}) {
		t.Fatal("a push past analyticsQueueMax was taken")
	}
	if len(q.wake) != 1 {
		t.Fatalf("%d wake-ups pending, want 1", len(q.wake))
	}
	<-q.wake

	// A waiting push goes in once the items are taken.
	pushed := make(chan bool)
	go func() {
		pushed <- q.pushWait(context.Background(), nil, analyticsMsg{partition: -1})
	}()
	select {
	case <-pushed:
		t.Fatal("pushWait did not wait for room")
	case <-time.After(50 * time.Millisecond):
	}
	items := q.take(nil)
	if len(items) != analyticsQueueMax || items[0].partition != 0 || items[len(items)-1].partition != analyticsQueueMax-1 {
		t.Fatalf("took %d items, first %d", len(items), items[0].partition)
	}
	if !<-pushed {
		t.Fatal("pushWait refused after room was made")
	}
	if got := q.take(items); len(got) != 1 || got[0].partition != -1 || len(q.wake) != 1 {
		t.Fatalf("after the wait: %d items, %d wake-ups", len(got), len(q.wake))
	}

	// A wait ends with its context, and a closed queue refuses.
	for range analyticsQueueMax {
		q.push(analyticsMsg{})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if q.pushWait(ctx, nil, analyticsMsg{}) {
		t.Fatal("pushWait on a full queue returned true when its context ended")
	}
	q.take(nil)
	q.close()
	if q.push(analyticsMsg{}) || q.pushWait(context.Background(), nil, analyticsMsg{}) {
		t.Fatal("a closed queue took an item")
	}
}

// A burst's array is not kept: the queue takes a spare back only up to
// analyticsSpareKeep items of room, so what a burst grew is let go.
func TestAnalyticsQueueLetsABurstsArrayGo(t *testing.T) {
	q := analyticsQueue{wake: make(chan struct{}, 1)}
	for i := range 10 * analyticsSpareKeep {
		q.push(analyticsMsg{partition: i})
	}
	burst := q.take(nil)
	clear(burst)
	q.take(burst) // the runner gives the burst's array back as its spare
	q.push(analyticsMsg{partition: -1})
	if got := q.take(nil); len(got) != 1 || cap(got) > analyticsSpareKeep {
		t.Fatalf("after a burst of %d: the next item came in an array of %d, want at most %d", len(burst), cap(got), analyticsSpareKeep)
	}
	small := make([]analyticsMsg, 0, analyticsSpareKeep)
	q.push(analyticsMsg{partition: -2})
	q.take(small)
	q.push(analyticsMsg{partition: -3})
	if got := q.take(nil); cap(got) != analyticsSpareKeep {
		t.Fatalf("a spare of %d was not kept: the next items came in an array of %d", analyticsSpareKeep, cap(got))
	}
}
