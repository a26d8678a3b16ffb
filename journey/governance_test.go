package journey

import (
	"maps"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the same zone rules on every machine the tests run on
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("bad test time %q: %v", s, err)
	}
	return v
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return loc
}

func TestQuietUntil(t *testing.T) {
	night := &QuietHours{From: "21:00", To: "08:00"}
	lunch := &QuietHours{From: "12:00", To: "14:00"}
	early := &QuietHours{From: "01:00", To: "02:30"}
	tests := []struct {
		name      string
		q         *QuietHours
		zone      string
		at        string // RFC 3339
		wantQuiet bool
		wantEnd   string // RFC 3339, when quiet
	}{
		// A window crossing midnight.
		{"night: evening", night, "UTC", "2026-06-10T22:00:00Z", true, "2026-06-11T08:00:00Z"},
		{"night: after midnight", night, "UTC", "2026-06-11T03:00:00Z", true, "2026-06-11T08:00:00Z"},
		{"night: exactly at from is inside", night, "UTC", "2026-06-10T21:00:00Z", true, "2026-06-11T08:00:00Z"},
		{"night: just before from", night, "UTC", "2026-06-10T20:59:59.999Z", false, ""},
		{"night: exactly at to is outside", night, "UTC", "2026-06-11T08:00:00Z", false, ""},
		{"night: just before to", night, "UTC", "2026-06-11T07:59:59Z", true, "2026-06-11T08:00:00Z"},
		{"night: midday", night, "UTC", "2026-06-11T12:00:00Z", false, ""},
		{"night: last day of the month", night, "UTC", "2026-06-30T23:00:00Z", true, "2026-07-01T08:00:00Z"},
		// A same-day window.
		{"lunch: exactly at from", lunch, "UTC", "2026-06-10T12:00:00Z", true, "2026-06-10T14:00:00Z"},
		{"lunch: inside", lunch, "UTC", "2026-06-10T13:59:00Z", true, "2026-06-10T14:00:00Z"},
		{"lunch: exactly at to", lunch, "UTC", "2026-06-10T14:00:00Z", false, ""},
		{"lunch: before", lunch, "UTC", "2026-06-10T11:59:59Z", false, ""},
		{"lunch: late evening", lunch, "UTC", "2026-06-10T23:00:00Z", false, ""},
		// In the customer's zone, not UTC.
		{"night in Berlin winter", night, "Europe/Berlin", "2026-01-15T20:30:00Z", true, "2026-01-16T07:00:00Z"},
		{"20:30 UTC is 22:30 in Berlin summer", night, "Europe/Berlin", "2026-06-10T20:30:00Z", true, "2026-06-11T06:00:00Z"},
		{"07:30 UTC is 09:30 in Berlin summer", night, "Europe/Berlin", "2026-06-11T07:30:00Z", false, ""},
		// Europe/Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00Z).
		{"Berlin spring: night spans the jump", night, "Europe/Berlin", "2026-03-28T21:00:00Z", true, "2026-03-29T06:00:00Z"},
		{"Berlin spring: to 02:30 does not exist, release at the jump", early, "Europe/Berlin", "2026-03-29T00:30:00Z", true, "2026-03-29T01:00:00Z"},
		{"Berlin spring: last instant before the jump", early, "Europe/Berlin", "2026-03-29T00:59:59Z", true, "2026-03-29T01:00:00Z"},
		{"Berlin spring: the jump itself is outside", early, "Europe/Berlin", "2026-03-29T01:00:00Z", false, ""},
		{"Berlin spring: 03:10 CEST is outside", early, "Europe/Berlin", "2026-03-29T01:10:00Z", false, ""},
		{"Berlin spring: from 02:30 does not exist, 03:00 is inside", &QuietHours{From: "02:30", To: "05:00"}, "Europe/Berlin", "2026-03-29T01:00:00Z", true, "2026-03-29T03:00:00Z"},
		{"Berlin spring: before the missing from", &QuietHours{From: "02:30", To: "05:00"}, "Europe/Berlin", "2026-03-29T00:59:00Z", false, ""},
		// Europe/Berlin, 2026-10-25: 03:00 CEST falls back to 02:00 CET (01:00Z).
		// A window that the clock leaves backwards still ends at the next To.
		{"Berlin autumn: set back out of the window, held to the next to", &QuietHours{From: "02:30", To: "05:00"}, "Europe/Berlin", "2026-10-25T00:45:00Z", true, "2026-10-25T04:00:00Z"},
		{"Berlin autumn: second 02:10 is outside that window", &QuietHours{From: "02:30", To: "05:00"}, "Europe/Berlin", "2026-10-25T01:10:00Z", false, ""},
		{"Berlin autumn: night spans the fall", night, "Europe/Berlin", "2026-10-24T20:00:00Z", true, "2026-10-25T07:00:00Z"},
		{"Berlin autumn: first 02:15, first 02:30", early, "Europe/Berlin", "2026-10-25T00:15:00Z", true, "2026-10-25T00:30:00Z"},
		{"Berlin autumn: first 02:45 is outside", early, "Europe/Berlin", "2026-10-25T00:45:00Z", false, ""},
		{"Berlin autumn: second 02:00 is inside again", early, "Europe/Berlin", "2026-10-25T01:00:00Z", true, "2026-10-25T01:30:00Z"},
		{"Berlin autumn: second 02:15, second 02:30", early, "Europe/Berlin", "2026-10-25T01:15:00Z", true, "2026-10-25T01:30:00Z"},
		// America/New_York, 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00Z).
		// time.Date gives 01:30 EST for 02:30 here, before the message.
		{"New York spring: to 02:30 does not exist, release at the jump", early, "America/New_York", "2026-03-08T06:45:00Z", true, "2026-03-08T07:00:00Z"},
		{"New York spring: before 01:30 EST too", early, "America/New_York", "2026-03-08T06:10:00Z", true, "2026-03-08T07:00:00Z"},
		{"New York spring: night spans the jump", night, "America/New_York", "2026-03-08T04:00:00Z", true, "2026-03-08T12:00:00Z"},
		// America/New_York, 2026-11-01: 02:00 EDT falls back to 01:00 EST (06:00Z).
		{"New York autumn: first 01:10", &QuietHours{From: "00:30", To: "01:30"}, "America/New_York", "2026-11-01T05:10:00Z", true, "2026-11-01T05:30:00Z"},
		{"New York autumn: second 01:10", &QuietHours{From: "00:30", To: "01:30"}, "America/New_York", "2026-11-01T06:10:00Z", true, "2026-11-01T06:30:00Z"},
		// Not a window.
		{"nil quiet hours", nil, "UTC", "2026-06-10T22:00:00Z", false, ""},
		{"invalid window is never quiet", &QuietHours{From: "25:00", To: "08:00"}, "UTC", "2026-06-10T22:00:00Z", false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			at := mustTime(t, tc.at)
			end, quiet := tc.q.QuietUntil(at, mustZone(t, tc.zone))
			if quiet != tc.wantQuiet {
				t.Fatalf("quiet = %v, want %v (end %v)", quiet, tc.wantQuiet, end)
			}
			if !quiet {
				return
			}
			if want := mustTime(t, tc.wantEnd); !end.Equal(want) {
				t.Fatalf("end = %v (%v), want %v", end.UTC(), end, want)
			}
			if !end.After(at) {
				t.Fatalf("end %v is not after %v", end, at)
			}
			if _, still := tc.q.QuietUntil(end, mustZone(t, tc.zone)); still {
				t.Fatalf("still quiet at the end %v", end)
			}
		})
	}
}

// TestQuietUntilEveryMinute walks days with daylight-saving changes minute by
// minute and checks QuietUntil against a naive model: quiet while the wall
// clock is in the window, released at the first later minute at which the
// wall clock, moving forward, reaches or passes To.
func TestQuietUntilEveryMinute(t *testing.T) {
	windows := []*QuietHours{
		{From: "21:00", To: "08:00"}, {From: "12:00", To: "14:00"},
		{From: "01:00", To: "02:30"}, {From: "02:30", To: "05:00"}, {From: "00:30", To: "01:30"},
	}
	days := []struct{ zone, start string }{
		{"Europe/Berlin", "2026-03-28T12:00:00Z"},
		{"Europe/Berlin", "2026-10-24T12:00:00Z"},
		{"America/New_York", "2026-03-07T12:00:00Z"},
		{"America/New_York", "2026-11-01T00:00:00Z"},
	}
	inWindow := func(q *QuietHours, u time.Time, loc *time.Location) bool {
		from, _ := parseClock(q.From)
		to, _ := parseClock(q.To)
		w := wallMinutes(u, loc)
		if from < to {
			return from <= w && w < to
		}
		return w >= from || w < to
	}
	for _, day := range days {
		loc := mustZone(t, day.zone)
		start := mustTime(t, day.start)
		for _, q := range windows {
			for m := 0; m < 36*60; m++ {
				at := start.Add(time.Duration(m) * time.Minute)
				end, quiet := q.QuietUntil(at, loc)
				if quiet != inWindow(q, at, loc) {
					t.Fatalf("%s %s-%s at %v: quiet = %v", day.zone, q.From, q.To, at.In(loc), quiet)
				}
				if !quiet {
					continue
				}
				to, _ := parseClock(q.To)
				want := at.Add(time.Minute)
				for !reaches(wallMinutes(want.Add(-time.Minute), loc), wallMinutes(want, loc), to) {
					want = want.Add(time.Minute)
				}
				if !end.Equal(want) {
					t.Fatalf("%s %s-%s at %v: end = %v, want %v", day.zone, q.From, q.To, at.In(loc), end.In(loc), want.In(loc))
				}
			}
		}
	}
}

// wallMinutes is the wall clock of u in loc, to the minute.
func wallMinutes(u time.Time, loc *time.Location) time.Duration {
	l := u.In(loc)
	return time.Duration(l.Hour())*time.Hour + time.Duration(l.Minute())*time.Minute
}

// reaches reports whether a wall clock moving from before to after (one
// minute of real time, so a forward move is under half a day and a backward
// one is a clock set back) reaches or passes to.
func reaches(before, after, to time.Duration) bool {
	const day = 24 * time.Hour
	moved := (after - before + day) % day
	return moved < day/2 && (to-before+day)%day != 0 && (to-before+day)%day <= moved
}

func TestCustomerLocation(t *testing.T) {
	tests := []struct {
		name    string
		profile map[string]any
		want    string
	}{
		{"nil profile", nil, "UTC"},
		{"unset", map[string]any{"tier": "vip"}, "UTC"},
		{"empty", map[string]any{"timezone": ""}, "UTC"},
		{"known", map[string]any{"timezone": "Europe/Berlin"}, "Europe/Berlin"},
		{"known again, from the cache", map[string]any{"timezone": "Europe/Berlin"}, "Europe/Berlin"},
		{"unknown", map[string]any{"timezone": "Mars/Olympus_Mons"}, "UTC"},
		{"not a string", map[string]any{"timezone": 5}, "UTC"},
		{"the host's zone is refused", map[string]any{"timezone": "Local"}, "UTC"},
		{"path escape", map[string]any{"timezone": "../../etc/passwd"}, "UTC"},
		{"too long", map[string]any{"timezone": strings.Repeat("A", TimezoneMaxChars+1)}, "UTC"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := CustomerLocation(tc.profile).String(); got != tc.want {
				t.Fatalf("location = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestGovernanceValidate(t *testing.T) {
	valid := func() *Governance {
		return &Governance{
			FrequencyCap: &FrequencyCap{Max: 2, Per: 24 * time.Hour},
			QuietHours:   &QuietHours{From: "21:00", To: "08:00"},
		}
	}
	tests := []struct {
		name   string
		edit   func(g *Governance) *Governance
		errors []string // substrings, one per expected problem; none: valid
	}{
		{"nil governance", func(*Governance) *Governance { return nil }, nil},
		{"zero value", func(*Governance) *Governance { return &Governance{} }, nil},
		{"valid", func(g *Governance) *Governance { return g }, nil},
		{"per at the limit", func(g *Governance) *Governance { g.FrequencyCap.Per = FrequencyCapPerMax; return g }, nil},
		{"same-day window", func(g *Governance) *Governance { g.QuietHours = &QuietHours{From: "12:00", To: "14:00"}; return g }, nil},
		{"midnight bounds", func(g *Governance) *Governance { g.QuietHours = &QuietHours{From: "00:00", To: "23:59"}; return g }, nil},
		{"max 0", func(g *Governance) *Governance { g.FrequencyCap.Max = 0; return g }, []string{"frequency_cap.max"}},
		{"per 0", func(g *Governance) *Governance { g.FrequencyCap.Per = 0; return g }, []string{"frequency_cap.per: must be above 0"}},
		{"per negative", func(g *Governance) *Governance { g.FrequencyCap.Per = -time.Hour; return g }, []string{"frequency_cap.per: must be above 0"}},
		{"per past the limit", func(g *Governance) *Governance { g.FrequencyCap.Per = FrequencyCapPerMax + time.Second; return g }, []string{"frequency_cap.per: must be at most"}},
		{"hour 24", func(g *Governance) *Governance { g.QuietHours.From = "24:00"; return g }, []string{"quiet_hours.from"}},
		{"one-digit hour", func(g *Governance) *Governance { g.QuietHours.From = "7:00"; return g }, []string{"quiet_hours.from"}},
		{"minute 60", func(g *Governance) *Governance { g.QuietHours.To = "07:60"; return g }, []string{"quiet_hours.to"}},
		{"seconds", func(g *Governance) *Governance { g.QuietHours.To = "07:00:00"; return g }, []string{"quiet_hours.to"}},
		{"letters", func(g *Governance) *Governance { g.QuietHours.To = "ab:cd"; return g }, []string{"quiet_hours.to"}},
		{"empty", func(g *Governance) *Governance { g.QuietHours.To = ""; return g }, []string{"quiet_hours.to"}},
		{"from equals to", func(g *Governance) *Governance { g.QuietHours.To = "21:00"; return g }, []string{"from and to are both 21:00"}},
		{"every problem at once", func(g *Governance) *Governance {
			g.FrequencyCap = &FrequencyCap{Max: -1, Per: 31 * 24 * time.Hour}
			g.QuietHours = &QuietHours{From: "9pm", To: "08:0"}
			return g
		}, []string{"frequency_cap.max", "frequency_cap.per", "quiet_hours.from", "quiet_hours.to"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.edit(valid()).Validate()
			if len(tc.errors) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tc.errors)
			}
			if lines := strings.Split(err.Error(), "\n"); len(lines) != len(tc.errors) {
				t.Fatalf("Validate() = %d problems, want %d:\n%v", len(lines), len(tc.errors), err)
			}
			for _, want := range tc.errors {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Validate() = %v, want it to mention %q", err, want)
				}
			}
		})
	}
}

func TestCountedWindowMax(t *testing.T) {
	var none *Governance
	if got := none.CountedWindowMax(); got != 0 {
		t.Errorf("nil governance: %d, want 0", got)
	}
	if got := (&Governance{}).CountedWindowMax(); got != 0 {
		t.Errorf("no cap: %d, want 0", got)
	}
	if got := (&Governance{FrequencyCap: &FrequencyCap{Max: 3, Per: time.Hour}}).CountedWindowMax(); got != 3 {
		t.Errorf("cap of 3: %d, want 3", got)
	}
}

func TestGovernanceDecide(t *testing.T) {
	noon := mustTime(t, "2026-06-10T12:00:00Z")    // outside 21:00-08:00 in UTC and Berlin
	night := mustTime(t, "2026-06-10T22:00:00Z")   // inside 21:00-08:00 in UTC
	morning := mustTime(t, "2026-06-11T08:00:00Z") // the end of that night in UTC
	policy := &Governance{
		FrequencyCap: &FrequencyCap{Max: 2, Per: 24 * time.Hour},
		QuietHours:   &QuietHours{From: "21:00", To: "08:00"},
	}
	requireConsent := &Governance{RequireConsent: true}
	everyKind := map[string][]string{
		"whatsapp": {"+15550000001"},
		"phone":    {"+15550000002", "+15550000003"},
		"email":    {"old@example.com", "new@example.com"},
		"web":      {"w-1"},
	}
	noWhatsApp := map[string][]string{"phone": {"+15550000002"}, "email": {"a@example.com"}}
	consent := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	sent := func(channel string, to map[string]string) ProactiveVerdict {
		return ProactiveVerdict{Outcome: OutcomeSend, Channel: channel, To: to}
	}
	suppressed := func(reason string) ProactiveVerdict {
		return ProactiveVerdict{Outcome: OutcomeSuppress, Reason: reason}
	}
	tests := []struct {
		name string
		g    *Governance
		in   ProactiveInput
		want ProactiveVerdict
	}{
		// Channel choice.
		{"identities in order: whatsapp first", policy,
			ProactiveInput{Now: noon, Identities: everyKind},
			sent("whatsapp", map[string]string{"whatsapp": "+15550000001"})},
		{"then sms, to the newest phone", policy,
			ProactiveInput{Now: noon, Identities: noWhatsApp},
			sent("sms", map[string]string{"phone": "+15550000002"})},
		{"then email, to the newest address", policy,
			ProactiveInput{Now: noon, Identities: map[string][]string{"email": {"old@example.com", "new@example.com"}, "web": {"w-1"}}},
			sent("email", map[string]string{"email": "new@example.com"})},
		{"then web", policy,
			ProactiveInput{Now: noon, Identities: map[string][]string{"web": {"w-1"}, "external": {"crm-9"}}},
			sent("web", map[string]string{"web": "w-1"})},
		{"the last customer channel comes before identities", policy,
			ProactiveInput{Now: noon, LastChannel: "email", Identities: everyKind},
			sent("email", map[string]string{"email": "new@example.com"})},
		{"preferred_channel comes before the last channel", policy,
			ProactiveInput{Now: noon, Profile: consent("preferred_channel", "sms"), LastChannel: "email", Identities: everyKind},
			sent("sms", map[string]string{"phone": "+15550000003"})},
		{"preferred whatsapp without a whatsapp id goes to the phone", policy,
			ProactiveInput{Now: noon, Profile: consent("preferred_channel", "whatsapp"), Identities: noWhatsApp},
			sent("whatsapp", map[string]string{"phone": "+15550000002"})},
		{"preferred chat goes to the web identity, as a reply on chat does", policy,
			ProactiveInput{Now: noon, Profile: consent("preferred_channel", "chat"), Identities: everyKind},
			sent("chat", map[string]string{"web": "w-1"})},
		{"preferred channel without an identity: empty To", policy,
			ProactiveInput{Now: noon, Profile: consent("preferred_channel", "chat"), Identities: noWhatsApp},
			sent("chat", map[string]string{})},
		{"a preferred_channel that is not a string is ignored", policy,
			ProactiveInput{Now: noon, Profile: consent("preferred_channel", 7), Identities: noWhatsApp},
			sent("sms", map[string]string{"phone": "+15550000002"})},
		{"preferred_channel without consent falls to the last channel", policy,
			ProactiveInput{Now: noon, Profile: consent("preferred_channel", "sms", "consent", consent("sms", false)), LastChannel: "web", Identities: everyKind},
			sent("web", map[string]string{"web": "w-1"})},
		{"preferred_channel without consent falls to the identities, skipping it there too", policy,
			ProactiveInput{Now: noon, Profile: consent("preferred_channel", "sms", "consent", consent("sms", false)), Identities: noWhatsApp},
			sent("email", map[string]string{"email": "a@example.com"})},
		{"consent true is consent", policy,
			ProactiveInput{Now: noon, Profile: consent("consent", consent("sms", true)), Identities: noWhatsApp},
			sent("sms", map[string]string{"phone": "+15550000002"})},
		{"no identities and no channel: no_channel", policy,
			ProactiveInput{Now: noon, Identities: map[string][]string{"external": {"crm-9"}}},
			suppressed(ReasonNoChannel)},
		{"nothing at all: no_channel", nil,
			ProactiveInput{Now: noon},
			suppressed(ReasonNoChannel)},
		{"every channel refused: no_consent", policy,
			ProactiveInput{Now: noon, Profile: consent("consent", consent("whatsapp", false, "sms", false, "email", false, "web", false)), Identities: everyKind},
			suppressed(ReasonNoConsent)},
		{"the only channel refused: no_consent", policy,
			ProactiveInput{Now: noon, Profile: consent("consent", consent("email", false)), Identities: map[string][]string{"email": {"a@example.com"}}},
			suppressed(ReasonNoConsent)},
		// Requested channel.
		{"requested channel wins over the choice", policy,
			ProactiveInput{Now: noon, Channel: "email", Profile: consent("preferred_channel", "sms"), Identities: everyKind},
			sent("email", map[string]string{"email": "new@example.com"})},
		{"requested channel without consent: no_consent, no fallback", policy,
			ProactiveInput{Now: noon, Channel: "sms", Profile: consent("consent", consent("sms", false)), Identities: everyKind},
			suppressed(ReasonNoConsent)},
		{"requested channel without an identity", policy,
			ProactiveInput{Now: noon, Channel: "voice"},
			sent("voice", map[string]string{})},
		// require_consent.
		{"require_consent: unset does not count", requireConsent,
			ProactiveInput{Now: noon, Identities: everyKind},
			suppressed(ReasonNoConsent)},
		{"require_consent: the first channel with true", requireConsent,
			ProactiveInput{Now: noon, Profile: consent("consent", consent("sms", false, "email", true)), Identities: everyKind},
			sent("email", map[string]string{"email": "new@example.com"})},
		{"require_consent: only a bool true counts", requireConsent,
			ProactiveInput{Now: noon, Profile: consent("consent", consent("sms", "yes")), Identities: noWhatsApp},
			suppressed(ReasonNoConsent)},
		{"without require_consent a non-bool counts as unset", policy,
			ProactiveInput{Now: noon, Profile: consent("consent", consent("sms", "no")), Identities: noWhatsApp},
			sent("sms", map[string]string{"phone": "+15550000002"})},
		{"require_consent: requested channel with true", requireConsent,
			ProactiveInput{Now: noon, Channel: "web", Profile: consent("consent", consent("web", true)), Identities: everyKind},
			sent("web", map[string]string{"web": "w-1"})},
		{"nil governance: false still refuses", nil,
			ProactiveInput{Now: noon, Profile: consent("consent", consent("whatsapp", false)), Identities: everyKind},
			sent("sms", map[string]string{"phone": "+15550000003"})},
		// Frequency cap: only (Now-Per, Now] counts.
		{"cap reached", policy,
			ProactiveInput{Now: noon, Identities: noWhatsApp, Counted: []time.Time{noon.Add(-time.Hour), noon.Add(-23 * time.Hour)}},
			ProactiveVerdict{Outcome: OutcomeSuppress, Reason: ReasonFrequencyCap, Channel: "sms", To: map[string]string{"phone": "+15550000002"}}},
		{"cap reached, one exactly now", policy,
			ProactiveInput{Now: noon, Identities: noWhatsApp, Counted: []time.Time{noon, noon.Add(-time.Minute)}},
			ProactiveVerdict{Outcome: OutcomeSuppress, Reason: ReasonFrequencyCap, Channel: "sms", To: map[string]string{"phone": "+15550000002"}}},
		{"one exactly Per ago is out of the window", policy,
			ProactiveInput{Now: noon, Identities: noWhatsApp, Counted: []time.Time{noon.Add(-time.Hour), noon.Add(-24 * time.Hour)}},
			sent("sms", map[string]string{"phone": "+15550000002"})},
		{"times after now do not count", policy,
			ProactiveInput{Now: noon, Identities: noWhatsApp, Counted: []time.Time{noon.Add(time.Second), noon.Add(-time.Hour)}},
			sent("sms", map[string]string{"phone": "+15550000002"})},
		{"any order, old ones ignored", policy,
			ProactiveInput{Now: noon, Identities: noWhatsApp, Counted: []time.Time{noon.Add(-48 * time.Hour), noon.Add(-2 * time.Hour), noon.Add(-30 * time.Hour), noon.Add(-time.Hour)}},
			ProactiveVerdict{Outcome: OutcomeSuppress, Reason: ReasonFrequencyCap, Channel: "sms", To: map[string]string{"phone": "+15550000002"}}},
		{"no consent comes before the cap", policy,
			ProactiveInput{Now: noon, Channel: "sms", Profile: consent("consent", consent("sms", false)), Identities: noWhatsApp, Counted: []time.Time{noon, noon}},
			suppressed(ReasonNoConsent)},
		{"capped at night: frequency_cap, not a hold", policy,
			ProactiveInput{Now: night, Identities: noWhatsApp, Counted: []time.Time{night.Add(-time.Hour), night.Add(-2 * time.Hour)}},
			ProactiveVerdict{Outcome: OutcomeSuppress, Reason: ReasonFrequencyCap, Channel: "sms", To: map[string]string{"phone": "+15550000002"}}},
		// Quiet hours.
		{"at night: held until morning", policy,
			ProactiveInput{Now: night, Identities: noWhatsApp, Counted: []time.Time{night.Add(-time.Hour)}},
			ProactiveVerdict{Outcome: OutcomeHold, Channel: "sms", To: map[string]string{"phone": "+15550000002"}, ReleaseAt: morning}},
		{"night in the customer's zone, not UTC", policy,
			ProactiveInput{Now: mustTime(t, "2026-06-10T19:30:00Z"), Profile: consent("timezone", "Europe/Berlin"), Identities: noWhatsApp},
			ProactiveVerdict{Outcome: OutcomeHold, Channel: "sms", To: map[string]string{"phone": "+15550000002"}, ReleaseAt: mustTime(t, "2026-06-11T06:00:00Z")}},
		{"night in UTC is day in the customer's zone", policy,
			ProactiveInput{Now: mustTime(t, "2026-06-11T05:00:00Z"), Profile: consent("timezone", "Asia/Tokyo"), Identities: noWhatsApp},
			sent("sms", map[string]string{"phone": "+15550000002"})},
		{"unknown timezone is UTC", policy,
			ProactiveInput{Now: night, Profile: consent("timezone", "Nowhere/Else"), Identities: noWhatsApp},
			ProactiveVerdict{Outcome: OutcomeHold, Channel: "sms", To: map[string]string{"phone": "+15550000002"}, ReleaseAt: morning}},
		{"release after expiry: quiet_hours", policy,
			ProactiveInput{Now: night, Expires: morning.Add(-time.Second), Identities: noWhatsApp},
			ProactiveVerdict{Outcome: OutcomeSuppress, Reason: ReasonQuietHours, Channel: "sms", To: map[string]string{"phone": "+15550000002"}}},
		{"release exactly at expiry: held", policy,
			ProactiveInput{Now: night, Expires: morning, Identities: noWhatsApp},
			ProactiveVerdict{Outcome: OutcomeHold, Channel: "sms", To: map[string]string{"phone": "+15550000002"}, ReleaseAt: morning}},
		{"default expiry: a 23h30 hold lengthened by the autumn hour is past 24h", &Governance{QuietHours: &QuietHours{From: "08:00", To: "07:30"}},
			ProactiveInput{Now: mustTime(t, "2026-10-24T06:00:00Z"), Profile: consent("timezone", "Europe/Berlin"), Identities: noWhatsApp},
			ProactiveVerdict{Outcome: OutcomeSuppress, Reason: ReasonQuietHours, Channel: "sms", To: map[string]string{"phone": "+15550000002"}}},
		{"default expiry: the same hold on an ordinary day", &Governance{QuietHours: &QuietHours{From: "08:00", To: "07:30"}},
			ProactiveInput{Now: mustTime(t, "2026-10-17T06:00:00Z"), Profile: consent("timezone", "Europe/Berlin"), Identities: noWhatsApp},
			ProactiveVerdict{Outcome: OutcomeHold, Channel: "sms", To: map[string]string{"phone": "+15550000002"}, ReleaseAt: mustTime(t, "2026-10-18T05:30:00Z")}},
		{"spring-forward release at the jump", &Governance{QuietHours: &QuietHours{From: "01:00", To: "02:30"}},
			ProactiveInput{Now: mustTime(t, "2026-03-08T06:45:00Z"), Profile: consent("timezone", "America/New_York"), Identities: noWhatsApp},
			ProactiveVerdict{Outcome: OutcomeHold, Channel: "sms", To: map[string]string{"phone": "+15550000002"}, ReleaseAt: mustTime(t, "2026-03-08T07:00:00Z")}},
		{"nil governance: no quiet hours, no cap", nil,
			ProactiveInput{Now: night, Identities: noWhatsApp, Counted: []time.Time{night, night, night}},
			sent("sms", map[string]string{"phone": "+15550000002"})},
		// A proactive message's address is a reply's (AddressFor): a voice
		// call goes to the newest phone, web chat to the web identity.
		{"voice reaches the newest phone", nil,
			ProactiveInput{Now: noon, Channel: "voice", Identities: everyKind},
			sent("voice", map[string]string{"phone": "+15550000003"})},
		{"a channel no identity reaches: empty address", nil,
			ProactiveInput{Now: noon, Channel: "voice", Identities: map[string][]string{"email": {"a@example.com"}}},
			sent("voice", map[string]string{})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.g.Decide(tc.in)
			if got.Outcome != tc.want.Outcome || got.Reason != tc.want.Reason || got.Channel != tc.want.Channel ||
				!got.ReleaseAt.Equal(tc.want.ReleaseAt) || !maps.Equal(got.To, tc.want.To) || (got.To == nil) != (tc.want.To == nil) {
				t.Fatalf("Decide() =\n  %+v\nwant\n  %+v", got, tc.want)
			}
		})
	}
}

// TestDecideLatestMaxSuffice checks the CountedWindowMax contract: deciding on
// only the latest Max counted times gives the same verdict as on all of them.
func TestDecideLatestMaxSuffice(t *testing.T) {
	g := &Governance{FrequencyCap: &FrequencyCap{Max: 3, Per: 10 * time.Hour}}
	now := mustTime(t, "2026-06-10T12:00:00Z")
	ids := map[string][]string{"email": {"a@example.com"}}
	capped := 0
	for mask := 0; mask < 1<<12; mask++ {
		var all []time.Time // newest first: bit i is a message i hours before now
		for i := range 12 {
			if mask&(1<<i) != 0 {
				all = append(all, now.Add(-time.Duration(i)*time.Hour))
			}
		}
		latest := all[:min(len(all), g.CountedWindowMax())]
		full := g.Decide(ProactiveInput{Now: now, Identities: ids, Counted: all})
		kept := g.Decide(ProactiveInput{Now: now, Identities: ids, Counted: latest})
		if full.Outcome != kept.Outcome || full.Reason != kept.Reason {
			t.Fatalf("mask %b: all times give %+v, the latest %d give %+v", mask, full, len(latest), kept)
		}
		if full.Reason == ReasonFrequencyCap {
			capped++
		}
	}
	if capped == 0 {
		t.Fatal("the cap never applied: the test checks nothing")
	}
}
