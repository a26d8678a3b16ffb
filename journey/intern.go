package journey

import "strings"

// Intern gives the state its own copy of an event's word (a type, a
// channel; the actors' connection notes use it too): the program's constant for a common one (timelineWords), else
// a clone. A string taken from an event as it is keeps the event's whole
// string block alive (Compact gives id, type, channel, actor and text one
// allocation): once the timeline held events encoded, that was a
// customer's latest text in memory twice.
func Intern(s string) string {
	if code, ok := timelineCodes[s]; ok {
		return timelineWords[code-1]
	}
	return strings.Clone(s)
}
