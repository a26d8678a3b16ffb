package persistence

import "testing"

func TestMemoryConformance(t *testing.T) {
	runConformance(t, func(t *testing.T, partitions int) Engine {
		e := NewMemory(partitions)
		t.Cleanup(func() { _ = e.Close() })
		return e
	})
}
