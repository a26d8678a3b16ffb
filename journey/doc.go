// Package journey is Throughline's domain, pure: event types, validation and
// normalization of inbound events and identities, the customer's in-memory
// state, and what happens next.
//
//   - Decide: an inbound event or a profile patch to events and a reply, or
//     a typed rejection; Apply: events to state (it cannot fail).
//   - Step: Decide, Apply, then the journey's reaction: the conversation
//     (conversation.go), the bot's turns and hand-over (bot.go, step.go),
//     outbound delivery and receipts (outbound.go), rules with durable timers
//     (rules.go, rules_cel.go, rules_apply.go), governance of proactive
//     messages (governance.go) and workflows (workflow.go,
//     workflow_step.go). Every obligation to act later is a due-work key in
//     the Decision, discharged by a Due input.
//
// The state (customer.go) keeps its latest events encoded in one byte slice
// (timeline.go): a resident customer is mostly bytes the collector does not
// scan.
//
// It sits at the bottom of the dependency graph: it imports the standard
// library, cel-go and internal/jsonenc only. It has no goroutines, no clock (time arrives as a
// value), no I/O and no randomness: work that needs them (a bot's brain, a
// one-time code, an HTTP look-up) leaves as an effect and comes back as an
// input. Step, Decide and Apply are not safe for concurrent use on one
// Customer: the customer actor owns its state and is its only caller. A
// Policy and compiled Rules are immutable and shared.
package journey
