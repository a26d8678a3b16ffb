package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/throughline/throughline/bench"
)

// Names and limits of the peer's stream.
const (
	streamName     = "EVENTS"
	subjectPrefix  = "ev."
	readyTimeout   = 10 * time.Second
	requestTimeout = 10 * time.Second
	// ackTimeout fails a publish whose ack has not come: as long as the
	// bench's drain, so a stuck ack is counted, not waited for forever.
	ackTimeout = 30 * time.Second
)

// measure starts the embedded server, creates the stream, drives it and
// shuts everything down.
func measure(ctx context.Context, wc bench.WindowedConfig, dataDir string, dedup time.Duration) (*bench.WindowedResult, error) {
	dir, err := os.MkdirTemp(dataDir, "throughline-bench-nats-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	srv, err := startServer(dir)
	if err != nil {
		return nil, err
	}
	defer stopServer(srv)
	if err := createStream(ctx, srv.ClientURL(), dedup); err != nil {
		return nil, err
	}

	var mu sync.Mutex
	var conns []*nats.Conn
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, nc := range conns {
			nc.Close()
		}
	}()
	return bench.DriveWindowed(ctx, wc, func(int) (bench.Sender, error) {
		s, nc, err := newPublisher(srv.ClientURL(), wc.Window)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		conns = append(conns, nc)
		mu.Unlock()
		return s, nil
	})
}

// startServer starts an embedded NATS server with JetStream storing in
// dir, every write synced before its ack, on a loopback port.
func startServer(dir string) (*server.Server, error) {
	srv, err := server.NewServer(&server.Options{
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   dir,
		SyncAlways: true, // fsync every write before its ack, as the store syncs every commit
		NoLog:      true,
		NoSigs:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(readyTimeout) {
		stopServer(srv)
		return nil, errors.New("nats server: not ready")
	}
	return srv, nil
}

func stopServer(srv *server.Server) {
	srv.Shutdown()
	srv.WaitForShutdown()
}

// createStream creates the file-backed stream of every event subject,
// deduplicating by Nats-Msg-Id within dedup.
func createStream(ctx context.Context, url string, dedup time.Duration) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return fmt.Errorf("nats connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name:       streamName,
		Subjects:   []string{subjectPrefix + ">"},
		Storage:    jetstream.FileStorage,
		Replicas:   1,
		Duplicates: dedup,
	})
	if err != nil {
		return fmt.Errorf("create stream: %w", err)
	}
	return nil
}

// publisher is one connection: its own NATS connection and JetStream
// context, publishing asynchronously; the ack and error handlers find the
// event's done by the message.
type publisher struct {
	js      jetstream.JetStream
	mu      sync.Mutex
	pending map[*nats.Msg]func(error)
}

func newPublisher(url string, window int) (*publisher, *nats.Conn, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return nil, nil, fmt.Errorf("nats connect: %w", err)
	}
	p := &publisher{pending: make(map[*nats.Msg]func(error), window)}
	p.js, err = jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(window),
		jetstream.WithPublishAsyncTimeout(ackTimeout),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, m *nats.Msg, _ *jetstream.PubAck) { p.answer(m, nil) }),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) { p.answer(m, err) }),
	)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return p, nc, nil
}

// Send publishes e with its id as Nats-Msg-Id; the handlers call done.
func (p *publisher) Send(_ context.Context, e *bench.Event, done func(error)) error {
	m := &nats.Msg{
		Subject: subjectPrefix + e.Customer,
		Data:    append([]byte(nil), e.JSON...), // kept by the client for a retry
		Header:  nats.Header{},
	}
	p.mu.Lock()
	p.pending[m] = done
	p.mu.Unlock()
	if _, err := p.js.PublishMsgAsync(m, jetstream.WithMsgID(e.ID)); err != nil {
		p.mu.Lock()
		delete(p.pending, m)
		p.mu.Unlock()
		return err
	}
	return nil
}

// answer calls the done of m once.
func (p *publisher) answer(m *nats.Msg, err error) {
	p.mu.Lock()
	done, ok := p.pending[m]
	delete(p.pending, m)
	p.mu.Unlock()
	if ok {
		done(err)
	}
}
