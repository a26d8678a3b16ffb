// Package bench holds Throughline's workloads, each a Config and a Run, in
// the style of Pebble's bench: cmd/ only binds flags and prints the Report.
// DESIGN "Performance, measured by `throughline bench`" says which figures
// changes are judged by; read these reports, not timed tests.
//
// # Ingest
//
// `throughline bench ingest` (Run) measures durable events per second
// through the WebSocket gateway with acks, and the ack latency
// distribution. It talks to a server only through the public protocol
// (PROTOCOL sections 1, 2 and 7): WebSockets to /v1/channels/ws carrying
// `event` or `batch` frames, and the Prometheus text at /metrics for the
// server's memory and Pebble write stalls. The server is started by the
// command layer or named with --target; bench does not embed it.
//
// Each connection has one writer and one reader goroutine. Customer i
// always travels on connection i % Connections, so the server sees each
// customer's events in order; event ids carry a random run nonce so a rerun
// against the same data directory is not deduplicated. Answers are matched
// to events by id, not by arrival order.
//
// Two load shapes:
//   - Rate 0, closed loop: each connection keeps up to Window events in
//     flight; latency counts from the actual send. This finds the maximum
//     throughput.
//   - Rate N, open loop: each connection schedules its frames at
//     N/Connections events per second and latency counts from the scheduled
//     time, however late the frame actually left, so a stalling server
//     cannot hide its queueing (coordinated omission). Window still bounds
//     memory; frames held back by it keep their schedule.
//
// The Warmup is sent like the rest but excluded from the figures: the rate
// counts acks received during Duration, the latency covers events
// scheduled during Duration (HDR histogram, 1 µs to 60 s, 3 significant
// figures). At the end the writers stop, the readers wait up to 5 s for
// outstanding answers, and what is still unanswered is reported lost.
//
// The client shares the machine with the server, so it is lean: frames are
// built by appending into one reused buffer from a precomputed template,
// answers are parsed by a small scanner that does not allocate, and a
// connection's frames are written with one system call per burst rather
// than per frame.
//
// # Rows beside the server's
//
// The server run uses a gateway's window (64 events, or 4 batch frames, in
// flight per connection). After it, in the same run and one at a time,
// come the loads it is compared with, each reported as a Row (Measured:
// acked events/s in the measured period, ack latency of the events sent in
// it, per-minute figures past a minute) with the server's rate divided by
// its own:
//   - the server again at each deeper window (default 256), min(Duration,
//     20s): what keeping more in flight than a gateway does buys;
//   - the store ceiling: persistence.Open on the server's disk with the
//     server's default options, Connections writers each keeping Window
//     appends in flight through Store.Append (one event per append, chained
//     on the customer's seq as the customer actor chains them), so the
//     group-commit writer writes the same keys per event as the server's
//     store; as long as the server ran;
//   - the NATS JetStream peer (bench/cmd/peer, its own binary so the server
//     binary never links nats-server): an embedded server, file store,
//     every write synced, dedup by Nats-Msg-Id, the same events published
//     asynchronously from Connections client connections with at most
//     Window acks pending each; as long as the server ran;
//   - a bare WebSocket echo in the bench process that parses each frame
//     with encoding/json and answers the same ack or acks (nothing stored),
//     driven by the same client code, min(Duration, 20s): the cost of the
//     transport and JSON alone.
//
// The store ceiling and the peer share one driver (DriveWindowed), which
// counts exactly as the WebSocket client does.
//
// # Memory
//
// `throughline bench memory` (RunMemory) measures the live heap per
// resident customer: for each count of customers, a fresh customer runtime
// (actors over Pebble, in the bench process: no gateway, no WebSocket
// client whose buffers would count) is filled with Events events per
// customer, nobody passivated, and the live heap after a forced GC is
// compared with the one before. The process RSS is reported beside it:
// Pebble's memtables and block cache live outside the Go heap.
//
// # Journey
//
// `throughline bench journey` (RunJourney) measures bot turns: a customer's
// message.received sent on a channel WebSocket until the bot's outbound
// reply reaches that connection, against a server with the demo bot. The
// connections say hello for chat; each turn goes, on its connection's
// schedule (open loop, latency from the scheduled time), to the customer of
// that connection free the longest, so a customer has at most one turn in
// flight and an outbound is matched to its turn by customer. Acks are
// matched by event id and timed too; every outbound is confirmed with
// accepted, so nothing is sent again. A customer handed over is given no
// more turns (the bot no longer answers it). The brain's own time comes
// from the server's throughline_bot_brain_seconds, read at the start and
// the end of the measured period. The report states the bars with
// PASS or FAIL beside each.
//
// # Agents
//
// `throughline bench agents` (RunAgents) measures routing and the agent
// desk against a server whose rule routes escalate.requested to a queue
// the bench's agents serve, bypassing any bot (ServerSections states it).
// Agents desks connect to /v1/agents/ws and say they are available;
// channel connections send escalations on schedule (open loop), each a new
// customer, so a customer has one conversation. A desk accepts every offer
// at once; once the accept is answered ok, the customer's connection sends
// its message.received events when due, EventGap apart, and once they are
// all on the desk the desk wraps the conversation up, freeing the agent.
// Escalation to offer counts from the escalation's scheduled time until a
// desk has the offer (matched by customer); inbound to screen from an
// event's scheduled time until the assigned desk has its event frame
// (matched by event id). All of it is tracked under one lock shared by the
// channels' and desks' goroutines: thousands of frames a second do not
// contend on it.
//
// # Broadcast
//
// `throughline bench broadcast` (RunBroadcast) measures one broadcast
// (PROTOCOL section 5) to a segment the bench creates, while live ingest
// runs. A channel gateway connection says hello for sms and accepts every
// outbound, counting them and when they come, so the outbound path runs
// as in production. The segment is Customers customers, each with one
// payment.attempted and a phone of the run's own, sent in batch frames by
// the ingest client (closed loop, every answer awaited); OptOutPercent of
// them get sms consent false by profile patches. Then the ingest client
// runs open loop (single events, IngestRate, Window in flight per
// connection) to other customers; after Warmup and Baseline the broadcast
// is posted (supervisor token) and GET /v1/broadcasts/{id} is polled every
// 50 ms until done, with server memory read before, every second (peak)
// and at the end. The ingest's latencies are split by each event's
// scheduled time: before the POST (the baseline) and from the POST until
// the poll that saw done (during); the report gives both, their p99 ratio,
// the time from the 202 to done, targeted / time, the counts and the
// outbounds at the gateway, against the bars.
package bench
