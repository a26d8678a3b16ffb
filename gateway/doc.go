// Package gateway is Throughline's HTTP and WebSocket front: the channel
// WebSocket and HTTP API of PROTOCOL sections 1 to 3 and 7, bearer-token
// authentication, per-connection in-flight credit, /healthz, /readyz and
// /metrics. It maps wire formats to journey inputs and actors.Runtime calls,
// and maps errors to the codes of PROTOCOL section 7 in one place (errors.go).
//
// Concurrency: each WebSocket has one reader goroutine, one writer goroutine
// and, while events need identity resolution, one resolver goroutine that
// keeps them in order. The reader stops reading when the connection's credit
// is spent, so TCP pushes back. Every goroutine is started through the
// server's tracker, which refuses new ones during shutdown, except two of
// a WebSocket's, which its reader waits for before it ends (wspeer.go): its
// writer, which runs only while there is something to write (on a
// goroutine of its own, or on its ping timer's), and the goroutine that
// reads and handles each burst of the client's frames (readBursts).
//
// Deadlines (timeouts.go): every request gets its own read and write
// deadlines, a WebSocket a read deadline its keepalive renews on every frame
// and pong (a timer per connection pings every WSPingInterval). Every string of an
// inbound event is checked for UTF-8 on the raw bytes before decoding
// (journey.CheckJSONUTF8).
package gateway
