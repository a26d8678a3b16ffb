package cluster

import "testing"

func TestLocalTableHostsEveryPartition(t *testing.T) {
	tab, err := Local("n1", 64)
	if err != nil {
		t.Fatal(err)
	}
	if tab.Partitions() != 64 || tab.Owner(0) != "n1" || tab.Owner(63) != "n1" || len(tab.Hosted("n1")) != 64 {
		t.Fatalf("table %+v", tab)
	}
	if len(tab.Hosted("n2")) != 0 {
		t.Fatal("another node hosts partitions of a single-node table")
	}
	if _, err := Local("", 64); err == nil {
		t.Fatal("a node without a name")
	}
	if _, err := Local("n1", 0); err == nil {
		t.Fatal("zero partitions")
	}
}
