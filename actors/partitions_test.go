package actors

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/throughline/throughline/journey"
)

// A partition that leaves the node refuses its customers' messages with
// unavailable; hosted again, its customers come back from the store.
func TestPartitionUnhostedAndHostedAgain(t *testing.T) {
	rt, _ := startTest(t, Config{})
	if r := ingest(t, rt, "c-1", "e-1"); r.Ack == nil || r.Ack.Seq != 1 {
		t.Fatalf("first event: %+v", r)
	}
	p := rt.PartitionOf("c-1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rt.UnhostPartition(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := rt.UnhostPartition(ctx, p); !errors.Is(err, ErrNotHosted) {
		t.Errorf("second unhost: %v", err)
	}
	for _, q := range rt.Hosted() {
		if q == p {
			t.Errorf("partition %d still listed as hosted", p)
		}
	}
	if r := ingest(t, rt, "c-1", "e-2"); r.Reject == nil || r.Reject.Code != journey.CodeUnavailable {
		t.Errorf("event for an unhosted partition: %+v", r)
	}
	if _, _, err := rt.Context(ctx, "c-1"); err == nil {
		t.Error("a read of an unhosted partition answered")
	}
	if err := rt.HostPartition(p); err != nil {
		t.Fatal(err)
	}
	if err := rt.HostPartition(p); !errors.Is(err, ErrHosted) {
		t.Errorf("second host: %v", err)
	}
	if r := ingest(t, rt, "c-1", "e-2"); r.Ack == nil || r.Ack.Seq != 2 {
		t.Errorf("after hosting again: %+v", r)
	}
	if r := ingest(t, rt, "c-1", "e-1"); r.Ack == nil || !r.Ack.Duplicate || r.Ack.Seq != 1 {
		t.Errorf("a repeat of the first id: %+v", r)
	}
}
