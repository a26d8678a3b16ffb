package journey

// Governance of proactive messages (PROTOCOL section 5).
//
// Every proactive message (a broadcast's message to one customer, a rule's
// `send` action) is judged by Governance.Decide before it goes out, in this
// order:
//
//  1. channel: the requested channel, else the customer's preferred_channel,
//     else the channel of its latest customer event, else the channels its
//     identities reach (whatsapp, sms, email, web). A channel without consent
//     is skipped. Nothing left: no_consent, or no_channel when there was no
//     candidate at all.
//  2. frequency_cap: at most Max messages per customer in any window of Per,
//     on recorded_at times. A capped message is suppressed even at night.
//  3. quiet_hours: inside the window, in the customer's timezone, the message
//     is held until the window ends, unless that is after it expires.
//
// Decide is pure: time comes in as ProactiveInput.Now, and the caller records
// the verdict (proactive.sent or proactive.suppressed, or the hold plus its
// due-work key) and keeps the recorded_at times that count against the cap.

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Limits of governance. Every one is named here.
const (
	// FrequencyCapPerMax is the longest frequency-cap window: the caller keeps
	// the recorded_at times of a customer's proactive messages this long.
	FrequencyCapPerMax = 30 * 24 * time.Hour
	// ProactiveExpiryDefault is a proactive message's lifetime when it names
	// no expiry: a hold released later than this is suppressed.
	ProactiveExpiryDefault = 24 * time.Hour
	// TimezoneMaxChars bounds the profile timezone looked up; IANA names are
	// far shorter, so a longer one is unknown (UTC) without a look-up.
	TimezoneMaxChars = 64
	// LocationCacheMax bounds the loaded time zones kept for reuse (the IANA
	// database holds about 600 names); past it, zones are loaded per call.
	LocationCacheMax = 1024
)

// Suppression reasons of PROTOCOL section 5, recorded in data.reason of
// proactive.suppressed.
const (
	ReasonNoConsent    = "no_consent"
	ReasonFrequencyCap = "frequency_cap"
	ReasonQuietHours   = "quiet_hours"
	ReasonNoChannel    = "no_channel"
)

// Outcomes of Governance.Decide.
const (
	OutcomeSend     = "send"     // send now on Channel to To
	OutcomeHold     = "hold"     // send at ReleaseAt on Channel to To; counts against the cap now
	OutcomeSuppress = "suppress" // record proactive.suppressed with Reason
)

// Governance is the operator's policy for proactive messages (config
// `governance:`). The zero value, and a nil *Governance, mean no frequency
// cap, no quiet hours, and an unset consent counts as consent.
type Governance struct {
	// FrequencyCap limits proactive messages per customer; nil: no cap.
	FrequencyCap *FrequencyCap `yaml:"frequency_cap"`
	// QuietHours holds proactive messages at night; nil: never held.
	QuietHours *QuietHours `yaml:"quiet_hours"`
	// RequireConsent makes only an explicit `true` in the profile's consent
	// object count; default false: only an explicit `false` refuses.
	RequireConsent bool `yaml:"require_consent"`
}

// FrequencyCap allows at most Max proactive messages per customer in any
// rolling window of Per, measured on recorded_at. Messages held for quiet
// hours count from when they are held; service replies do not count.
type FrequencyCap struct {
	Max int           `yaml:"max"` // at least 1
	Per time.Duration `yaml:"per"` // above 0, at most FrequencyCapPerMax
}

// QuietHours is a daily window of local wall-clock time, in the customer's
// timezone, during which proactive messages are held. From is inside the
// window and To is not; a window with From after To crosses midnight.
type QuietHours struct {
	From string `yaml:"from"` // "HH:MM", 24-hour, e.g. "21:00"
	To   string `yaml:"to"`   // "HH:MM", 24-hour, e.g. "08:00"; not equal to From
}

// Validate reports every problem of the policy in one error (errors.Join);
// nil when it is usable. A nil *Governance is valid (no governance).
func (g *Governance) Validate() error {
	if g == nil {
		return nil
	}
	var errs []error
	if c := g.FrequencyCap; c != nil {
		if c.Max < 1 {
			errs = append(errs, fmt.Errorf("governance.frequency_cap.max: must be at least 1, got %d", c.Max))
		}
		if c.Per <= 0 {
			errs = append(errs, fmt.Errorf("governance.frequency_cap.per: must be above 0, got %s", c.Per))
		} else if c.Per > FrequencyCapPerMax {
			errs = append(errs, fmt.Errorf("governance.frequency_cap.per: must be at most %s, got %s", FrequencyCapPerMax, c.Per))
		}
	}
	if q := g.QuietHours; q != nil {
		from, fromOK := parseClock(q.From)
		if !fromOK {
			errs = append(errs, fmt.Errorf("governance.quiet_hours.from: want HH:MM (00:00 to 23:59), got %q", q.From))
		}
		to, toOK := parseClock(q.To)
		if !toOK {
			errs = append(errs, fmt.Errorf("governance.quiet_hours.to: want HH:MM (00:00 to 23:59), got %q", q.To))
		}
		if fromOK && toOK && from == to {
			errs = append(errs, fmt.Errorf("governance.quiet_hours: from and to are both %s: the window would be empty or the whole day", q.From))
		}
	}
	return errors.Join(errs...)
}

// CountedWindowMax is how many recorded_at times of a customer's proactive
// messages the caller needs to keep for the frequency cap: the latest Max
// (0 without a cap). Only they matter: the cap is reached exactly when the
// Max-th newest time is inside the window, so older ones can be dropped, as
// can any older than FrequencyCap.Per.
func (g *Governance) CountedWindowMax() int {
	if g == nil || g.FrequencyCap == nil {
		return 0
	}
	return g.FrequencyCap.Max
}

// ProactiveInput is what governance decides on: one proactive message for
// one customer. Decide reads it and changes nothing in it.
type ProactiveInput struct {
	// Now is the decision time (the recorded_at the verdict will carry).
	Now time.Time
	// Expires is the latest time the message may go out; zero means
	// Now + ProactiveExpiryDefault.
	Expires time.Time
	// Channel is the requested channel (a `send` action's channel); "" for
	// the channel choice of PROTOCOL section 5.
	Channel string
	// Profile is the customer's profile; Decide reads consent (an object of
	// channel to bool), preferred_channel and timezone.
	Profile map[string]any
	// LastChannel is the channel of the customer's latest event with actor
	// customer that named one; "" when none did.
	LastChannel string
	// Identities maps identity kind to the customer's values, newest last.
	Identities map[string][]string
	// Service marks a service message (a broadcast's resolve): consent and
	// channel apply, the frequency cap and quiet hours do not.
	Service bool
	// Counted holds the recorded_at times of the customer's earlier
	// proactive messages that count against the cap (sent or held), in any
	// order; the latest CountedWindowMax of them are enough.
	Counted []time.Time
}

// ProactiveVerdict is governance's decision on one proactive message.
type ProactiveVerdict struct {
	// Outcome is OutcomeSend, OutcomeHold or OutcomeSuppress.
	Outcome string
	// Channel is the chosen channel, also set for frequency_cap and
	// quiet_hours suppressions; "" for no_consent and no_channel.
	Channel string
	// To is the identity to deliver to on Channel, one kind to its newest
	// value: whatsapp -> whatsapp (else phone), sms -> phone, email -> email,
	// web -> web. It is an empty map when the channel has no identity (e.g.
	// chat), and nil when no channel was chosen.
	To map[string]string
	// Reason is one of the Reason constants when Outcome is OutcomeSuppress.
	Reason string
	// ReleaseAt is when quiet hours end, when Outcome is OutcomeHold.
	ReleaseAt time.Time
}

// Decide judges one proactive message: channel, then frequency cap, then
// quiet hours (PROTOCOL section 5). g may be nil: no cap, no quiet hours, an
// unset consent counts. A hold is final: at ReleaseAt the caller sends on the
// verdict's Channel and To without deciding again (the held message already
// counts against the cap, so deciding again would cap it by itself).
// Expires is weighed against the release of a hold only; a message not held
// goes out now.
func (g *Governance) Decide(in ProactiveInput) ProactiveVerdict {
	channel, reason := g.chooseChannel(in)
	if reason != "" {
		return ProactiveVerdict{Outcome: OutcomeSuppress, Reason: reason}
	}
	v := ProactiveVerdict{Channel: channel, To: AddressFor(in.Identities, channel)}
	if in.Service {
		v.Outcome = OutcomeSend
		return v
	}
	if g.capped(in.Now, in.Counted) {
		v.Outcome, v.Reason = OutcomeSuppress, ReasonFrequencyCap
		return v
	}
	if g != nil && g.QuietHours != nil {
		release, quiet := g.QuietHours.QuietUntil(in.Now, CustomerLocation(in.Profile))
		if quiet {
			expires := in.Expires
			if expires.IsZero() {
				expires = in.Now.Add(ProactiveExpiryDefault)
			}
			if release.After(expires) {
				v.Outcome, v.Reason = OutcomeSuppress, ReasonQuietHours
				return v
			}
			v.Outcome, v.ReleaseAt = OutcomeHold, release
			return v
		}
	}
	v.Outcome = OutcomeSend
	return v
}

// chooseChannel returns the first candidate channel with consent, or the
// suppression reason when there is none.
func (g *Governance) chooseChannel(in ProactiveInput) (channel, reason string) {
	var buf candidateBuf
	candidates := buf[:0]
	if in.Channel != "" {
		candidates = append(candidates, in.Channel)
	} else {
		candidates = channelCandidates(in, candidates)
	}
	if len(candidates) == 0 {
		return "", ReasonNoChannel
	}
	require := g != nil && g.RequireConsent
	for _, c := range candidates {
		if hasConsent(in.Profile, c, require) {
			return c, ""
		}
	}
	return "", ReasonNoConsent
}

// identityChannels are the channels a customer's identities reach, in the
// order of PROTOCOL section 5, with the identity kind that reaches each.
var identityChannels = [...]struct{ channel, kind string }{
	{"whatsapp", "whatsapp"},
	{"sms", "phone"},
	{"email", "email"},
	{"web", "web"},
}

// candidateBuf holds every channel candidate: a caller's array on its stack
// (a proactive message is decided for each of a broadcast's targets).
type candidateBuf [2 + len(identityChannels)]string

// channelCandidates appends to candidates the channel choice of PROTOCOL
// section 5 in order, without repeats: preferred_channel, the last customer
// channel, then the channels the identities reach.
func channelCandidates(in ProactiveInput, candidates []string) []string {
	add := func(c string) {
		if c == "" {
			return
		}
		for _, seen := range candidates {
			if seen == c {
				return
			}
		}
		candidates = append(candidates, c)
	}
	preferred, _ := in.Profile["preferred_channel"].(string)
	add(preferred)
	add(in.LastChannel)
	for _, ic := range identityChannels {
		if len(in.Identities[ic.kind]) > 0 {
			add(ic.channel)
		}
	}
	return candidates
}

// hasConsent reads the profile's consent object for channel: only a bool
// counts as set. Unset counts as consent unless require is true.
func hasConsent(profile map[string]any, channel string, require bool) bool {
	consent, _ := profile["consent"].(map[string]any)
	given, set := consent[channel].(bool)
	if require {
		return set && given
	}
	return !set || given
}

// capped reports whether Max messages were already counted inside the
// window (now-Per, now].
func (g *Governance) capped(now time.Time, counted []time.Time) bool {
	if g == nil || g.FrequencyCap == nil {
		return false
	}
	c := g.FrequencyCap
	start := now.Add(-c.Per)
	n := 0
	for _, t := range counted {
		if t.After(start) && !t.After(now) {
			n++
		}
	}
	return n >= c.Max
}

// QuietUntil reports whether t is inside the quiet window in loc and, if so,
// when the window ends: the first instant after t at which the wall clock in
// loc reads To. From is inside the window, To is not. A nil q, or one that
// Validate refuses, is never quiet.
//
// Daylight-saving changes: when To occurs twice (clocks set back), the window
// ends at the first occurrence after t. When To does not exist (clocks
// jumping over it), the window ends at the jump, the first instant whose wall
// clock is at or past To: with 01:00-02:30 in Europe/Berlin on 2026-03-29,
// 03:00 CEST. This is not time.Date's normalization, which Go leaves
// unspecified for such times and which gives 03:30 CEST in Berlin but 01:30
// EST, before the jump, in America/New_York: a release that would come before
// the message, and a wall clock of 03:10 that is outside the window while the
// hold would still wait. When the clock is set back out of the window (02:30-
// 05:00 in Berlin on 2026-10-25: 02:45 CEST becomes 02:00 CET), a message
// inside it is still held to the next To (05:00 CET), while one decided at
// 02:10 CET, outside, goes at once: the window is a wall-clock reading, and
// its end is always a To.
func (q *QuietHours) QuietUntil(t time.Time, loc *time.Location) (time.Time, bool) {
	if q == nil {
		return time.Time{}, false
	}
	from, okFrom := parseClock(q.From)
	to, okTo := parseClock(q.To)
	if !okFrom || !okTo || from == to {
		return time.Time{}, false
	}
	if loc == nil {
		loc = time.UTC
	}
	local := t.In(loc)
	hour, minute, second := local.Clock()
	wall := time.Duration(hour)*time.Hour + time.Duration(minute)*time.Minute +
		time.Duration(second)*time.Second + time.Duration(local.Nanosecond())
	year, month, day := local.Date()
	switch {
	case from < to && from <= wall && wall < to: // same-day window
	case from > to && wall < to: // after midnight, in a window that began yesterday
	case from > to && from <= wall: // before midnight: the window ends tomorrow
		day++
	default:
		return time.Time{}, false
	}
	return wallClockEnd(t, year, month, day, to, loc), true
}

// wallClockEnd returns the first instant after t at which the wall clock in
// loc on the given date (normalized, so day may overflow) reads clock, or the
// daylight-saving jump over it when it does not exist that day.
func wallClockEnd(t time.Time, year int, month time.Month, day int, clock time.Duration, loc *time.Location) time.Time {
	// nominal is the wall-clock reading written as if in UTC; the instants
	// showing it in loc are nominal minus the offset of the zone they are in,
	// which can only be the zone of time.Date's guess or a neighbour.
	nominal := time.Date(year, month, day, 0, 0, 0, 0, time.UTC).Add(clock)
	guess := time.Date(year, month, day, int(clock/time.Hour), int(clock%time.Hour/time.Minute), 0, 0, loc)
	start, end := guess.ZoneBounds()
	probes := []time.Time{guess}
	if !start.IsZero() {
		probes = append(probes, start.Add(-time.Nanosecond))
	}
	if !end.IsZero() {
		probes = append(probes, end)
	}
	var first, last time.Time
	for _, p := range probes {
		_, offset := p.Zone()
		u := nominal.Add(-time.Duration(offset) * time.Second)
		if !wallAsUTC(u, loc).Equal(nominal) {
			continue
		}
		if u.After(t) && (first.IsZero() || u.Before(first)) {
			first = u
		}
		if last.IsZero() || u.After(last) {
			last = u
		}
	}
	switch {
	case !first.IsZero():
		return first
	case !last.IsZero(): // every occurrence is at or before t: cannot happen for a t inside the window
		return last
	case wallAsUTC(guess, loc).After(nominal): // no occurrence: the guess went past the jump
		return start
	case !end.IsZero(): // the guess stayed before the jump
		return end
	default:
		return guess
	}
}

// wallAsUTC returns the wall clock of u in loc written as if in UTC, so two
// readings compare as instants do.
func wallAsUTC(u time.Time, loc *time.Location) time.Time {
	l := u.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
}

// parseClock parses a 24-hour "HH:MM" into the time since midnight.
func parseClock(s string) (time.Duration, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	digit := func(i int) (int, bool) { return int(s[i] - '0'), s[i] >= '0' && s[i] <= '9' }
	h1, ok1 := digit(0)
	h2, ok2 := digit(1)
	m1, ok3 := digit(3)
	m2, ok4 := digit(4)
	hour, minute := h1*10+h2, m1*10+m2
	if !ok1 || !ok2 || !ok3 || !ok4 || hour > 23 || minute > 59 {
		return 0, false
	}
	return time.Duration(hour)*time.Hour + time.Duration(minute)*time.Minute, true
}

// locations caches loaded time zones by name, at most LocationCacheMax of
// them. A *time.Location is safe for concurrent use, and the cache only
// saves reading the tz database again: it changes no result.
var locations = struct {
	sync.Mutex
	byName map[string]*time.Location
}{byName: map[string]*time.Location{}}

// CustomerLocation returns the location of the profile's timezone (an IANA
// name such as "Europe/Berlin"), UTC when it is unset, not a string, unknown,
// or "Local" (the machine's zone would make decisions depend on the host).
// It is pure in the sense of this package: time.LoadLocation reads the tz
// database, the same answer every time; the binary should import
// time/tzdata so the answer does not depend on the host either.
func CustomerLocation(profile map[string]any) *time.Location {
	name, _ := profile["timezone"].(string)
	if name == "" || name == "Local" || name == "UTC" || len(name) > TimezoneMaxChars {
		return time.UTC
	}
	locations.Lock()
	loc, ok := locations.byName[name]
	locations.Unlock()
	if ok {
		return loc
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		loc = time.UTC // unknown names are cached too: a profile can name many
	}
	locations.Lock()
	if len(locations.byName) < LocationCacheMax {
		locations.byName[name] = loc
	}
	locations.Unlock()
	return loc
}
