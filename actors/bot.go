package actors

import (
	"context"
	"sync"

	"github.com/throughline/throughline/journey"
)

// BotFunc answers one bot turn. It runs on a bot worker, so a slow brain
// never blocks a customer actor, and must honour ctx (the turn's timeout).
type BotFunc func(ctx context.Context, req journey.BotRequest) journey.BotResult

// botPool runs bot turns on a fixed set of workers fed by a bounded queue.
// A turn that finds the queue full is answered at once as failed (the
// customer is handed over to a person) rather than waiting: a customer
// actor never blocks on the bot. Answers go back to the customer through
// its host, as events of the customer's.
type botPool struct {
	rt    *Runtime
	queue chan journey.BotRequest
	quit  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

func newBotPool(rt *Runtime) *botPool {
	p := &botPool{rt: rt, queue: make(chan journey.BotRequest, rt.cfg.BotQueue), quit: make(chan struct{})}
	if rt.cfg.Bot == nil {
		return p
	}
	for range rt.cfg.BotWorkers {
		p.wg.Add(1)
		go p.work()
	}
	return p
}

// submit queues a turn; it never blocks.
func (p *botPool) submit(req journey.BotRequest) {
	select {
	case p.queue <- req:
	default:
		p.answer(req, journey.BotResult{Err: "bot overloaded"})
	}
}

func (p *botPool) work() {
	defer p.wg.Done()
	for {
		select {
		case <-p.quit:
			return
		case req := <-p.queue:
			ctx, cancel := context.WithTimeout(context.Background(), p.rt.cfg.BotTimeout)
			res := p.rt.cfg.Bot(ctx, req)
			cancel()
			p.answer(req, res)
		}
	}
}

func (p *botPool) answer(req journey.BotRequest, res journey.BotResult) {
	res.Conversation, res.InReplyTo = req.Conversation, req.InReplyTo
	p.rt.toCustomer(&botResultMsg{customer: req.Customer, result: res})
}

// stop ends the workers; turns still queued are dropped (their customers
// were passivated: the conversation waits for the next message).
func (p *botPool) stop() {
	p.once.Do(func() { close(p.quit) })
	p.wg.Wait()
}
