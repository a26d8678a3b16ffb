// Package node builds a running Throughline node from its configuration:
// the YAML Config (PROTOCOL section 6) with Default, LoadConfig and
// Validate, and Start, which opens the store, starts the actors and the
// gateway, and returns a *Node whose Stop shuts them down in order (stop
// accepting, drain actors, flush the store). cmd/throughline keeps flags,
// signals and printing; tests and benches start nodes in-process.
//
// Concurrency: a Config is immutable once a node starts; a Node's methods
// are safe for concurrent use.
package node
