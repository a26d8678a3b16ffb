package actors

import (
	"context"
	"sync"

	"github.com/throughline/throughline/journey"
)

// BotFunc answers one bot turn. It runs on a task worker, so a slow brain
// never blocks a customer actor, and must honour ctx (the turn's timeout).
type BotFunc func(ctx context.Context, req journey.BotRequest) journey.BotResult

// taskPool runs the work customers hand off (bot turns, workflow steps) on
// a fixed set of workers fed by a bounded queue. Work that finds the queue
// full is answered at once as failed (the customer is handed over to a
// person) rather than waiting: a customer actor never blocks on it.
// Answers go back to the customer through its host, as inputs.
type taskPool struct {
	rt    *Runtime
	queue chan task
	quit  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

// task is one piece of work: run computes the answer; overflow is the
// answer when the queue is full.
type task struct {
	customer string
	run      func(ctx context.Context) journey.Input
	overflow journey.Input
}

func newTaskPool(rt *Runtime) *taskPool {
	p := &taskPool{rt: rt, queue: make(chan task, rt.cfg.TaskQueue), quit: make(chan struct{})}
	for range rt.cfg.TaskWorkers {
		p.wg.Add(1)
		go p.work()
	}
	return p
}

// bot queues a bot turn.
func (p *taskPool) bot(req journey.BotRequest) {
	answer := func(res journey.BotResult) journey.Input {
		res.Conversation, res.InReplyTo = req.Conversation, req.InReplyTo
		return &res
	}
	p.submit(task{
		customer: req.Customer,
		run: func(ctx context.Context) journey.Input {
			if p.rt.cfg.Bot == nil {
				return answer(journey.BotResult{Err: "no bot"})
			}
			ctx, cancel := context.WithTimeout(ctx, p.rt.cfg.BotTimeout)
			defer cancel()
			return answer(p.rt.cfg.Bot(ctx, req))
		},
		overflow: answer(journey.BotResult{Err: "bot overloaded"}),
	})
}

// workflow queues a workflow step's work.
func (p *taskPool) workflow(t journey.WorkflowTask) {
	p.submit(task{
		customer: t.Customer,
		run: func(ctx context.Context) journey.Input {
			r := p.rt.cfg.Workflow.Run(ctx, t)
			return &r
		},
		overflow: &journey.WorkflowResult{Workflow: t.Workflow, Step: t.Step, Err: "workflow runner overloaded"},
	})
}

func (p *taskPool) submit(t task) {
	select {
	case p.queue <- t:
	default:
		p.rt.toCustomer(&resultMsg{customer: t.customer, input: t.overflow})
	}
}

func (p *taskPool) work() {
	defer p.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-p.quit; cancel() }()
	for {
		select {
		case <-p.quit:
			return
		case t := <-p.queue:
			in := t.run(ctx)
			p.rt.toCustomer(&resultMsg{customer: t.customer, input: in})
		}
	}
}

// stop ends the workers, cancelling the work in hand; work still queued is
// dropped: a bot turn's conversation waits for the customer's next message,
// and a workflow step's due work fails it after a restart.
func (p *taskPool) stop() {
	p.once.Do(func() { close(p.quit) })
	p.wg.Wait()
}
