//go:build race

package gateway

// raceEnabled: the race detector's bookkeeping adds to what the memory
// tests measure.
const raceEnabled = true
