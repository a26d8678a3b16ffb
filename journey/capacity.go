package journey

import (
	"encoding/json"
	"errors"
	"maps"
)

// UnmarshalYAML reads a capacity as PROTOCOL section 4 writes it: a number
// (`capacity: 2`) or per channel (`capacity: {voice: 1, chat: 3}`). It takes
// yaml.v3's function form so journey does not import the YAML package.
func (c *Capacity) UnmarshalYAML(unmarshal func(any) error) error {
	var n int
	if unmarshal(&n) == nil {
		*c = Capacity{Total: n}
		return nil
	}
	var per map[string]int
	if err := unmarshal(&per); err != nil {
		return errors.New("capacity: a number, or channels and numbers ({voice: 1, chat: 3})")
	}
	*c = Capacity{PerChannel: per}
	return nil
}

// MarshalJSON writes a capacity as PROTOCOL section 4 reads it: a number,
// or per channel (with "total" when a total caps the channels together).
func (c Capacity) MarshalJSON() ([]byte, error) {
	if len(c.PerChannel) == 0 {
		return json.Marshal(c.Total)
	}
	m := maps.Clone(c.PerChannel)
	if c.Total > 0 {
		m["total"] = c.Total
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *Capacity) UnmarshalJSON(b []byte) error {
	var n int
	if json.Unmarshal(b, &n) == nil {
		*c = Capacity{Total: n}
		return nil
	}
	var m map[string]int
	if err := json.Unmarshal(b, &m); err != nil {
		return errors.New("capacity: a number or an object of channel numbers")
	}
	total := m["total"]
	delete(m, "total")
	*c = Capacity{Total: total, PerChannel: m}
	return nil
}
