package bench

import (
	"strings"
	"testing"
)

// Every customer's events are acked and kept resident, and they cost live
// heap: a run that passivated them, lost answers or read the heap wrong
// would show none.
func TestRunMemoryCountsResidentCustomers(t *testing.T) {
	cfg := DefaultMemory()
	cfg.Customers = []int{2000}
	cfg.Events = 2
	cfg.EventBytes = 50
	cfg.DataDir = t.TempDir()
	r, err := RunMemory(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Rows) != 1 {
		t.Fatalf("rows %+v, want 1", r.Rows)
	}
	row := r.Rows[0]
	if row.Acked != 4000 || row.Rejected != 0 {
		t.Errorf("acked %d, rejected %d: want 4000 acked", row.Acked, row.Rejected)
	}
	if row.Resident != 2000 || row.Evictions != 0 || len(r.Warnings) != 0 {
		t.Errorf("%d resident, %d evicted, warnings %q: want every customer resident", row.Resident, row.Evictions, r.Warnings)
	}
	if row.BytesPerCust < 100 || row.HeapAfter <= row.HeapBefore {
		t.Errorf("live heap %d -> %d, %.0f bytes per customer: resident customers must cost heap", row.HeapBefore, row.HeapAfter, row.BytesPerCust)
	}
	var md strings.Builder
	if err := r.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "| 2,000 |") {
		t.Errorf("Markdown lacks the 2,000 row:\n%s", md.String())
	}
}

func TestMemoryValidateListsEveryProblem(t *testing.T) {
	cfg := MemoryConfig{Customers: []int{0, MemoryCustomersMax + 1}, Events: 0, EventBytes: 0, InFlight: 0}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	for _, want := range []string{"customers 0", "customers 10000001", "events 0", "event bytes 0", "in flight 0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, lacks %q", err, want)
		}
	}
}
