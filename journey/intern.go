package journey

import "strings"

// intern gives the state its own copy of an event's word (a type, a
// channel): the program's constant for a common one (timelineWords), else
// a clone. A string taken from an event as it is keeps the event's whole
// string block alive (Compact gives id, type, channel, actor and text one
// allocation): once the timeline held events encoded, that was a
// customer's latest text in memory twice.
func intern(s string) string {
	if code, ok := timelineCodes[s]; ok {
		return timelineWords[code-1]
	}
	return strings.Clone(s)
}

// Intern is intern for the actors' own copies of an event's words (the
// channel a connection is noted for).
func Intern(s string) string { return intern(s) }
