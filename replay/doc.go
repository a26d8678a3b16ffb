// Package replay is the what-if replay of `throughline replay`: it re-runs
// stored journeys through journey.Step under a new policy (rules, bot
// settings, queues, governance) and reports what would change: rules that
// would fire or stop firing, routes to other queues, rules' proactive
// messages sent, held or suppressed otherwise, and hand-overs gained, lost
// or changed, each with counts and a few sample customers.
//
// How a customer is replayed, and why. The customer's stored events are fed
// in seq order; each is applied to a rebuilt state exactly as the customer
// actor rebuilds it (journey's Apply), so the state always is the recorded
// one. At each recorded input (a customer's event with the identity.linked
// before it, a profile patch, a bot turn read back from its
// ai.kb_searched, ai.replied and reply, or an after: rule's timer come due,
// read from its journey.rule_fired), the state just before it is
// stepped twice, once under the old policy and once under the new, and the
// two decisions are compared. The time of each step is the input's
// recorded_at, so quiet hours, frequency caps and count() windows see the
// time they saw.
//
// Each input is judged against the recorded history, not against a history
// the new policy would have made: after an input the replay goes on from
// what was stored, not from what the new policy decided. The replay cannot
// invent what the world would have answered to a different decision (the
// bot's reply to a message it was not asked about, an agent's work on a
// conversation routed elsewhere), so a diverging simulation would soon be
// fiction; one step at a time, every reported change is one that input
// would really have decided. Consequences that need several steps (a tag a
// new rule sets, read by another rule later) are out of its reach, and a
// new after: rule shows as its timer armed, not as its later firing.
//
// The old side is stepped too, rather than read from the stored outputs:
// both sides then go through the same code from the same state, and the
// comparison of the old side with the stored events verifies the old
// policy. An input whose old decision differs from what is stored is
// counted in Report.Mismatched: the old policy given is not the one the
// journal was recorded under (the data dir does not keep its config).
//
// Not replayed, but applied as recorded: receipts, other due work
// (quiet-hours releases, which consult no config; idle closes; outbound
// redelivery), agents' and supervisors' work, workflow results, offers and
// broadcasts. A bot reply that was held back
// (the bot handed over) was never stored: it is replayed with its
// recorded intent, confidence and sentiment and a placeholder text.
//
// The package is pure, like journey: no I/O, no clock, no goroutines. The
// caller reads the store (persistence.Reader) and feeds the events; a
// Replayer is used by one goroutine at a time. Everything that grows is
// bounded: samples per change (Options.SamplesMax), distinct changes
// (Options.ChangesMax); a customer's history is streamed, one event at a
// time, and only the state and the input being read are held.
package replay
