package actors

import "github.com/throughline/throughline/journey"

// lastConnMax bounds the channels whose last connection a customer keeps.
const lastConnMax = 16

// connNotes is, per channel, the connection that last carried a customer's
// inbound there. Nearly every customer writes on one channel, so the first
// is kept in the customer itself and the others in a slice: a Go map here
// was two more objects per resident customer (~250 bytes), and its look-up
// on every inbound missed the CPU's caches once customers outnumber them
// (0.5 s of 16.7 s of server CPU, bench ingest with 100,000 customers).
// Channels are kept interned, so the comparison with an event's channel
// reads no other memory. The others are behind a pointer: 32 bytes in every
// customer, not 48.
type connNotes struct {
	first connNote
	more  *[]connNote // at most lastConnMax-1; nil until a second channel
}

type connNote struct {
	channel string
	conn    uint64
}

// note records conn as the channel's last connection. Past lastConnMax
// channels every note but the new one is forgotten.
func (n *connNotes) note(channel string, conn uint64) {
	if channel == "" {
		return // no channel, nowhere to send back to
	}
	if n.first.channel == channel {
		n.first.conn = conn
		return
	}
	var more []connNote
	if n.more != nil {
		more = *n.more
	}
	for i := range more {
		if more[i].channel == channel {
			more[i].conn = conn
			return
		}
	}
	note := connNote{channel: journey.Intern(channel), conn: conn}
	switch {
	case n.first.channel == "":
		n.first = note
	case 1+len(more) >= lastConnMax:
		n.first, n.more = note, nil
	default:
		more = append(more, note)
		n.more = &more
	}
}

// of is the channel's last connection, 0 when none is known.
func (n *connNotes) of(channel string) uint64 {
	if n.first.channel == channel {
		return n.first.conn // 0 for "": note keeps no empty channel
	}
	if n.more == nil {
		return 0
	}
	for _, c := range *n.more {
		if c.channel == channel {
			return c.conn
		}
	}
	return 0
}
