// Package journey is Throughline's domain, pure: event types, validation and
// normalization of inbound events and identities, the customer's in-memory
// state, Decide (input to events and a reply, or a typed rejection) and Apply
// (events to state; it cannot fail).
//
// It sits at the bottom of the dependency graph: it imports the standard
// library only. It has no goroutines, no clock (time arrives as a value), no
// I/O and no randomness. Decide and Apply are not safe for concurrent use on
// one Customer: the customer actor owns its state and is its only caller.
package journey
