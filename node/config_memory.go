package node

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/throughline/throughline/persistence"
)

// The node's memory budget (node.memory_limit): the Go soft memory limit
// (cmd/throughline sets it) and the marks of the runtime's admission
// (actors/memory.go). Written as bytes with a unit ("2GiB", "512MiB",
// "1.5GB", "1048576") or as a share of the memory this process may use
// ("75%"): the cgroup's limit (v2 memory.max, v1 memory.limit_in_bytes)
// when one is set, else the machine's (MemTotal in /proc/meminfo).

// Memory defaults and bounds.
const (
	MemoryLimitDefault = "75%"
	memoryLimitMin     = 64 << 20
	// residentCustomerBytes is what the default of
	// node.max_resident_customers allows a resident customer: the measured
	// ~8 KB with 20 events of history (actors TestResidentCustomerMemory),
	// with room for longer ones.
	residentCustomerBytes = 16 << 10
	// residentShare is the share of the budget the default of
	// node.max_resident_customers gives resident customers; connections,
	// the store's caches and the work in flight have the rest.
	residentShare      = 0.5
	maxResidentMax     = 100_000_000
	cgroupV2MemoryMax  = "/sys/fs/cgroup/memory.max"
	cgroupV1MemoryMax  = "/sys/fs/cgroup/memory/memory.limit_in_bytes"
	procMeminfo        = "/proc/meminfo"
	memoryUnitsAllowed = "B, KB, MB, GB, TB, KiB, MiB, GiB, TiB"
)

var memoryUnits = map[string]float64{
	"": 1, "B": 1,
	"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
}

// parseBytes reads a size with an optional unit.
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a size (a number and a unit: 2GiB)", s)
	}
	mult, ok := memoryUnits[unit]
	if !ok {
		return 0, fmt.Errorf("unit %q is not one of %s", unit, memoryUnitsAllowed)
	}
	return int64(v * mult), nil
}

// availableMemory is the memory this process may use: the cgroup's limit
// when one is set and below the machine's, else the machine's; and where it
// was read.
func availableMemory() (int64, string, error) {
	total, err := memTotal()
	if err != nil {
		return 0, "", err
	}
	for _, path := range []string{cgroupV2MemoryMax, cgroupV1MemoryMax} {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(data))
		if s == "max" {
			break // v2: no limit
		}
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 && n < total {
			return n, path, nil // v1 reports "no limit" as a huge number
		}
		break
	}
	return total, procMeminfo, nil
}

func memTotal() (int64, error) {
	data, err := os.ReadFile(procMeminfo)
	if err != nil {
		return 0, fmt.Errorf("the machine's memory: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: MemTotal %q: %w", procMeminfo, f[1], err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New(procMeminfo + ": no MemTotal")
}

// MemoryLimitBytes is node.memory_limit in bytes, a share resolved against
// the memory available.
func (n *NodeConfig) MemoryLimitBytes() (int64, error) {
	s := strings.TrimSpace(n.MemoryLimit)
	if s == "" {
		s = MemoryLimitDefault
	}
	if pct, ok := strings.CutSuffix(s, "%"); ok {
		p, err := strconv.ParseFloat(strings.TrimSpace(pct), 64)
		if err != nil || p <= 0 || p > 100 {
			return 0, fmt.Errorf("%q is not a share in (0%%, 100%%]", s)
		}
		avail, _, err := availableMemory()
		if err != nil {
			return 0, err
		}
		return int64(float64(avail) * p / 100), nil
	}
	return parseBytes(s)
}

// ResidentMax is node.max_resident_customers, or its default: as many
// customers as residentShare of the budget holds at residentCustomerBytes.
func (n *NodeConfig) ResidentMax(memoryLimit int64) int {
	if n.MaxResidentCustomers > 0 {
		return n.MaxResidentCustomers
	}
	return int(min(max(int64(float64(memoryLimit)*residentShare)/residentCustomerBytes, 1000), maxResidentMax))
}

// lastSeqsMax is how many customers' last seqs the store's writer
// remembers (persistence.Options.LastSeqsMax): twice the resident
// customers, so that those passivated lately are known too, and at least
// 65,536 (~3 MB at most).
func (n *NodeConfig) lastSeqsMax(memoryLimit int64) int {
	return min(max(2*n.ResidentMax(memoryLimit), 1<<16), persistence.LastSeqsMaxMax)
}

func (c *Config) validateMemory() []error {
	var errs []error
	limit, err := c.Node.MemoryLimitBytes()
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("node.memory_limit: %w", err))
	case limit < memoryLimitMin:
		errs = append(errs, fmt.Errorf("node.memory_limit: %s (%d bytes) is under %d MiB", c.Node.MemoryLimit, limit, memoryLimitMin>>20))
	default:
		if avail, from, err := availableMemory(); err == nil && limit > avail {
			errs = append(errs, fmt.Errorf("node.memory_limit: %s is more than the %d MiB available (%s)", c.Node.MemoryLimit, avail>>20, from))
		}
	}
	if r := c.Node.MaxResidentCustomers; r < 0 || r > maxResidentMax {
		errs = append(errs, fmt.Errorf("node.max_resident_customers: %d is not in 1..%d (0: the default, from node.memory_limit)", r, maxResidentMax))
	}
	return errs
}
