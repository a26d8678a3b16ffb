package journey

import "errors"

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
