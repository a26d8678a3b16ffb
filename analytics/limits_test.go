package analytics

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

// Hour buckets older than RollupAfter become day buckets; a window still
// counts them (to the day); past the retention they are gone.
func TestBucketsRollUpIntoDaysAndExpire(t *testing.T) {
	p := New()
	for i := range 3 {
		c := &customer{id: fmt.Sprintf("c-%d", i)}
		at := t0.Add(time.Duration(i) * time.Hour)
		feed(t, p, c.message(at, "web"), c.open(at, "bot", "web"), c.close(at.Add(min_(30))))
	}
	p.Prune(t0.Add(3 * 24 * time.Hour))
	if len(p.hours) != 0 || len(p.days) != 1 {
		t.Fatalf("%d hour buckets, %d day buckets after the roll-up", len(p.hours), len(p.days))
	}
	since, until := t0.Add(time.Hour), t0.Add(2*time.Hour)
	if a := Merge(p.Part(since, until, t0.Add(3*24*time.Hour), nil)).Answer(since, until); a.Conversations != 3 || a.Outcomes.Contained != 3 {
		t.Fatalf("the day's figures after the roll-up: %+v", a)
	}
	p.Prune(t0.Add(Retention + 24*time.Hour))
	if len(p.hours)+len(p.days) != 0 || len(p.tracked) != 0 {
		t.Fatalf("%d hours, %d days, %d tracked past the retention", len(p.hours), len(p.days), len(p.tracked))
	}
}

func TestTheTableOfFollowedCustomersIsBounded(t *testing.T) {
	p := New()
	for i := range TrackedMax + 10 {
		c := &customer{id: fmt.Sprintf("c-%d", i)}
		at := t0.Add(time.Duration(i) * time.Millisecond)
		feed(t, p, c.message(at, "web"), c.open(at, "bot", "web"))
	}
	if len(p.tracked) > TrackedMax {
		t.Fatalf("%d followed, limit %d", len(p.tracked), TrackedMax)
	}
	a := answer(p, t0.Add(time.Hour))
	if a.Conversations != TrackedMax+10 || a.Outcomes.Untracked == 0 || a.Outcomes.Open+a.Outcomes.Untracked != a.Conversations {
		t.Fatalf("outcomes %+v of %d", a.Outcomes, a.Conversations)
	}
}

func TestPathsAreBounded(t *testing.T) {
	p := New()
	c := &customer{id: "c-long"}
	feed(t, p, c.message(t0, "web"), c.open(t0, "bot", "web"))
	for i := range 20 {
		ch := []string{"sms", "web"}[i%2]
		feed(t, p, c.message(t0.Add(time.Duration(i)*time.Second), ch))
	}
	feed(t, p, c.close(t0.Add(min_(40))))
	a := answer(p, t0.Add(time.Hour))
	if len(a.Paths) != 1 || len(a.Paths[0].Steps) != PathStepsMax || a.Paths[0].Steps[PathStepsMax-1] != "..." {
		t.Fatalf("paths %+v", a.Paths)
	}
	// Distinct paths past PathsMax in one hour count as other, not listed.
	for i := range PathsMax + 5 {
		c := &customer{id: fmt.Sprintf("c-p%d", i)}
		feed(t, p, c.message(t0, "web"), c.open(t0, "bot", fmt.Sprintf("ch%d", i)), c.close(t0.Add(min_(30))))
	}
	if b := p.hours[t0.Unix()/3600]; len(b.Paths) != PathsMax+1 || b.Paths[OtherKey] == nil {
		t.Fatalf("%d paths kept in the bucket", len(b.Paths))
	}
	if a := answer(p, t0.Add(time.Hour)); len(a.Paths) != TopPaths {
		t.Fatalf("%d paths answered, want the top %d", len(a.Paths), TopPaths)
	}
}

func TestSketchQuantilesWithinOnePercent(t *testing.T) {
	s := Sketch{}
	var values []int64
	r := rand.New(rand.NewPCG(1, 2))
	for range 10_000 {
		v := int64(r.ExpFloat64() * 300_000)
		values = append(values, v)
		s.Add(v)
	}
	slices.Sort(values)
	for _, q := range []float64{0.5, 0.9, 0.99} {
		want := values[int(q*float64(len(values)))-1]
		if got := s.Quantile(q); !within(got, want) {
			t.Fatalf("q%v = %d, want %d within 1%%", q, got, want)
		}
	}
	if len(s) > 1000 {
		t.Fatalf("%d buckets", len(s))
	}
	o := Sketch{}
	o.Add(1)
	s.Merge(o)
	if s.Count() != 10_001 || (Sketch{}).Quantile(0.5) != 0 {
		t.Fatal("merge or empty quantile")
	}
}

func TestStateRoundTrips(t *testing.T) {
	p := New()
	c := &customer{id: "c-1"}
	feed(t, p, c.message(t0, "web"), c.open(t0, "bot", "web"), c.event(t0, journey.TypeProactiveSent, "rule:x", "sms", map[string]any{"offer": "o1"}))
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	q, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := answer(p, t0.Add(time.Hour)), answer(q, t0.Add(time.Hour)); fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("before %+v\nafter %+v", a, b)
	}
	if _, err := Decode([]byte(`{"version":99}`)); err == nil {
		t.Fatal("a state of another version decoded")
	}
	if _, err := Decode([]byte(`not json`)); err == nil {
		t.Fatal("garbage decoded")
	}
}
