package journey

import (
	"strconv"
	"testing"
	"time"
)

// TestOfferMarksBounded: the marks the offers' caps read stay within
// OfferMarksMax, the oldest giving way, and marks older than
// OfferCapPerMax are dropped.
func TestOfferMarksBounded(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	c := NewCustomer("c-42")
	for i := range OfferMarksMax + 10 {
		c.pushOfferMark(offerMark{Offer: "o-" + strconv.Itoa(i), At: t0.Add(time.Duration(i) * time.Minute).UnixNano()})
	}
	if len(c.offerMarks) != OfferMarksMax || c.offerMarks[0].Offer != "o-10" {
		t.Fatalf("%d marks, first %+v; want %d from o-10", len(c.offerMarks), c.offerMarks[0], OfferMarksMax)
	}
	c.pushOfferMark(offerMark{Offer: "late", At: t0.Add(OfferCapPerMax + 30*time.Minute).UnixNano()})
	// o-10 to o-30 (minutes 10 to 30) are not newer than OfferCapPerMax before the new one.
	if len(c.offerMarks) != OfferMarksMax-21+1 || c.offerMarks[0].Offer != "o-31" {
		t.Errorf("%d marks, first %+v", len(c.offerMarks), c.offerMarks[0])
	}
	d, err := DecodeSnapshot(c.EncodeSnapshot())
	if err != nil || len(d.offerMarks) != len(c.offerMarks) {
		t.Errorf("snapshot: %v, %d marks", err, len(d.offerMarks))
	}
}
