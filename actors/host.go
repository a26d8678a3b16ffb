package actors

import (
	"context"
	"hash/maphash"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/throughline/throughline/journey"
	"github.com/throughline/throughline/persistence"
)

// dueScanMax bounds how many due items one scan delivers; the rest wait for
// the next tick, which comes at once. (A variable so a test can lower it.)
var dueScanMax = 4096

// dueRescanEvery is how often a due scan starts from the beginning instead
// of where the last one ended (host.dueFrom): a due item delivered and not
// done (its customer refused it: the store unavailable) is delivered again
// within it. While items delivered since the last scan from the beginning
// may be pending (host.dueUnsure), a tick comes at least this often. (A
// variable so a test can shorten it.)
var dueRescanEvery = time.Minute

// dueTickMin is the least time between two due scans of a host: work due
// 2,000 or 10,000 a second (a broadcast's outbounds' retry keys, 30 s
// after it) comes in scans of a few milliseconds' items, not a scan each.
const dueTickMin = 5 * time.Millisecond

// host is a partition host: it owns the customer actors of one partition,
// activating them on their first message and running the passivation
// handshake so that no message reaches a stopping actor; it owns the
// partition's identities through its identity actor (identity.go); and it wakes customers whose due
// work comes due, so nothing depends on a customer being in memory.
type host struct {
	rt        *Runtime
	partition int
	store     persistence.Store

	children map[childKey]*child // active customers (residency.go)
	seeds    [2]maphash.Seed     // childKey's
	stopping map[string][]customerMsg
	// buffered messages of customers being passivated, by customer; bounded
	// by admission like every mailbox.

	// erasing are the erases under way, by customer (erase.go); erasedSet
	// the customers erased lately, at most ErasedMax, oldest first in
	// erasedOrder.
	erasing     map[string]*eraseMsg
	erasedSet   map[string]struct{}
	erasedOrder []string

	// res orders the active customers by their last message, for
	// passivating the least recently active first (residency.go).
	res residency

	dueTimer *time.Timer
	dueNext  time.Time
	// dueFrom is where the next due scan starts: every item due before it
	// was delivered by an earlier scan. Items are deleted once done, and a
	// Pebble iterator steps over each deletion until compactions drop it:
	// scanning from the beginning every tick, 30 s into a broadcast at
	// 2,000/s (its outbounds' retry keys coming due and deleted, 2,000 a
	// second) the scans took a quarter of a core. A customer that adds an
	// item before it tells the host (dueAt), which moves it back.
	// dueFullAt is when a scan last started from the beginning, dueScanAt
	// when one last ran. dueUnsure: a scan delivered items since a scan
	// from the beginning last found none due.
	dueFrom              persistence.DueWork // a time, or just after an item (Store.ScanDue)
	dueFullAt, dueScanAt time.Time
	dueUnsure            bool

	idleTimer *time.Timer // the next idle sweep (residency.go)

	customerProps *actor.Props     // every customer's (activate)
	made          *customerMailbox // the mailbox the spawn in activate made
	activations   uint64           // customers spawned, numbering their PIDs

	shutdown     bool
	shutdownDone chan struct{}
}

// childKey is a customer's key in its host's children: a 128-bit hash of
// its id. A map keyed by the id string compared the id's bytes, elsewhere
// in memory, on every message: with 100,000 customers the look-up missed
// the CPU's caches a time more (bench ingest: ~1% of the server's CPU).
type childKey [2]uint64

func (h *host) key(id string) childKey {
	return childKey{maphash.String(h.seeds[0], id), maphash.String(h.seeds[1], id)}
}

func newHost(rt *Runtime, p int) *host {
	return &host{
		rt: rt, partition: p, store: rt.engine.Store(p),
		seeds:    [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		children: map[childKey]*child{}, stopping: map[string][]customerMsg{},
		erasing: map[string]*eraseMsg{}, erasedSet: map[string]struct{}{},
	}
}

func (h *host) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		h.res.clock = monoClock()
		h.armIdleSweep(ctx)
		h.wakeRouted(ctx, false)
		h.deliverDue(ctx)
	case *idleSweep:
		h.sweepIdle(ctx)
		h.armIdleSweep(ctx)
	case *reannounce:
		h.wakeRouted(ctx, true)
	case customerMsg:
		h.route(ctx, m)
	case *passivateReq:
		c, ok := h.children[h.key(m.customer)]
		if ok && c.pid.Equal(m.pid) && h.erasing[m.customer] == nil {
			if _, already := h.stopping[m.customer]; !already {
				h.stopping[m.customer] = nil
			}
			if c.asked {
				h.rt.Evictions.Add(1)
			}
			ctx.Send(c.pid, &passivateOK{})
		}
		if ok {
			h.res.setAsked(c, false)
		}
	case *evictDeclined:
		if c, ok := h.children[h.key(m.customer)]; ok && c.pid.Equal(m.pid) {
			h.res.setAsked(c, false)
			c.declined = true
			h.enforceResidentMax(ctx) // another goes in its place
		}
	case *passivateLRU:
		h.evict(ctx, int(math.Ceil(m.share*float64(h.resident()))))
	case *actor.Terminated:
		h.terminated(ctx, m.Who)
	case *dueTick:
		h.dueTimer = nil
		h.deliverDue(ctx)
	case *dueAt:
		if m.at.Before(h.dueFrom.At) || h.dueFrom.Customer != "" && m.at.Equal(h.dueFrom.At) {
			h.dueFrom = persistence.DueWork{At: m.at}
		}
		h.armDue(ctx, m.at)
	case *passivateAll:
		h.shutdown = true
		h.shutdownDone = m.done
		if h.dueTimer != nil {
			h.dueTimer.Stop()
		}
		if h.idleTimer != nil {
			h.idleTimer.Stop()
		}
		for _, c := range h.children {
			if _, already := h.stopping[c.id]; !already {
				h.stopping[c.id] = nil
				ctx.Send(c.pid, &passivateOK{})
			}
		}
		h.checkShutdown()
	}
}

// route forwards a message to its customer, activating it, or buffers it
// while the customer passivates.
func (h *host) route(ctx actor.Context, m customerMsg) {
	id := m.customerID()
	if h.dropStale(m) {
		return
	}
	if buf, ok := h.stopping[id]; ok {
		if im, ok := m.(*ingestMsg); ok {
			im.here = false // routed again once the customer stopped, on the host's worker
		}
		h.stopping[id] = append(buf, m)
		return
	}
	if h.shutdown {
		refuse(m, unavailable("shutting down"))
		return
	}
	if e, ok := m.(*eraseMsg); ok {
		h.routeErase(ctx, e)
		return
	}
	c, ok := h.children[h.key(id)]
	if !ok {
		if c = h.activate(ctx, id); c == nil {
			refuse(m, unavailable("customer could not be activated"))
			return
		}
	}
	switch {
	case c.mailbox == nil:
		ctx.Send(c.pid, m)
	case !h.post(c.mailbox, m):
		// Stopped by its supervisor (past restartsMax): its process is
		// still registered until it has stopped, so a message sent
		// through the PID would wait in a mailbox that never runs again.
		refuse(m, unavailable("customer stopped; retry with the same id"))
		return
	}
	h.res.routed(c, m)
	if !ok {
		h.enforceResidentMax(ctx)
	}
}

// post posts m to the customer's mailbox. An ingest the host routes on
// the caller's goroutine (ingestMsg.here) runs there too when the
// customer's mailbox is idle: the gateway's goroutine decides and appends,
// instead of a worker woken for it. The host is held meanwhile (a few
// microseconds), and its messages posted meanwhile wait for a worker. An
// ingest that would read the store (the first of a customer with no
// events, or one whose id the filters cannot rule out) goes to a worker
// instead (ingestMsg.inline). An ingest routed on a worker is only
// posted: the host's worker does not run its customers' work.
func (h *host) post(mb *customerMailbox, m customerMsg) bool {
	if im, ok := m.(*ingestMsg); ok && im.here {
		im.here = false
		return mb.postOrRun(m, &im.inline)
	}
	return mb.post(m)
}

// activate spawns the customer, named by its id and the activation's
// number: one Props serves every customer of the host (a Props and a
// producer closure per activation were ~250 bytes of every resident
// customer), and the customer reads its id back from its PID
// (customerIDOf). The number keeps each activation's PID its own, so that
// a message of an earlier one (a late passivateReq) never matches the
// next. Nil when the name is taken, which the number rules out.
func (h *host) activate(ctx actor.Context, id string) *child {
	if h.customerProps == nil {
		rt, store := h.rt, h.store
		// The runtime's own mailbox (customerMailbox): one object per
		// customer with two inline slots (most resident customers are
		// idle), no allocation per message, and elastic work sent to the
		// elastic workers. The spawn makes the mailbox on this goroutine;
		// the host keeps it (made).
		h.customerProps = actor.PropsFromProducer(func() actor.Actor { return newCustomer(rt, store) },
			actor.WithDispatcher(rt.dispatch), actor.WithMailbox(rt.dispatch.customerMailboxes(func(m *customerMailbox) { h.made = m })))
	}
	h.activations++
	pid, err := ctx.SpawnNamed(h.customerProps, id+"/"+strconv.FormatUint(h.activations, 36))
	mailbox := h.made
	h.made = nil
	if err != nil {
		h.rt.cfg.Logger.Error("customer activation failed", "partition", h.partition, "err", err)
		return nil
	}
	c := &child{id: id, pid: pid, mailbox: mailbox, checked: math.MinInt64 / 2, firstPending: true}
	if c.mailbox != nil {
		c.mailbox.post(&mailboxMsg{mailbox: c.mailbox})
	}
	h.children[h.key(id)] = c
	return c
}

// customerIDOf is the id of the customer of ctx, from its PID: the host's
// id, "/", the customer's, "/", the activation's number (no allocation: it
// shares the PID's string).
func customerIDOf(ctx actor.Context) string {
	id, _ := childName(ctx.Parent().Id, ctx.Self().Id)
	return id
}

// childName is the customer id in the PID id of one of host's customers;
// false when pid is not one.
func childName(host, pid string) (string, bool) {
	if len(pid) <= len(host) || pid[:len(host)] != host || pid[len(host)] != '/' {
		return "", false
	}
	name := pid[len(host)+1:]
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return "", false
	}
	return name[:i], true
}

// terminated: a customer stopped. If messages arrived during its
// passivation, it is activated again at once and gets them in order.
func (h *host) terminated(ctx actor.Context, who *actor.PID) {
	id, ok := childName(ctx.Self().Id, who.Id)
	c := h.children[h.key(id)]
	if !ok || c == nil || !c.pid.Equal(who) {
		return
	}
	releasePID(ctx, c.pid)
	delete(h.children, h.key(id))
	h.res.forget(c)
	h.erased(id)
	buf := h.stopping[id]
	delete(h.stopping, id)
	for _, m := range buf {
		h.route(ctx, m)
	}
	h.checkShutdown()
}

func (h *host) checkShutdown() {
	if h.shutdown && len(h.children) == 0 && h.shutdownDone != nil {
		close(h.shutdownDone)
		h.shutdownDone = nil
	}
}

// refuse answers a message that cannot be delivered.
func refuse(m customerMsg, rej error) {
	switch m := m.(type) {
	case *ingestMsg:
		m.done(Result{Reject: asRejection(rej)})
	case *patchMsg:
		m.done(Result{Reject: asRejection(rej)}, nil)
	case *receiptMsg:
		m.done(asRejection(rej))
	case *deskMsg:
		m.done(asRejection(rej))
	case *broadcastMsg:
		m.done(asRejection(rej))
	case *subscribeMsg:
		m.done(0, asRejection(rej))
	case *contextMsg:
		m.reply <- contextReply{err: rej}
	case *eraseMsg:
		m.answer(rej)
	}
	// A routeOfferMsg that cannot be delivered is left to its caller (the
	// routing actor learns of it when toCustomer fails or by the revoke
	// of the customer's next activation).
}

// wakeRouted activates, at start, every customer whose conversation is
// with routing (a marker key at journey.RoutedKeyAt): each announces its
// conversation to the routing actor, which so rebuilds the queues and the
// agents' loads from what customers hold.
//
// With announce (the cluster's router moved), customers already active
// announce again too.
func (h *host) wakeRouted(ctx actor.Context, announce bool) {
	seen := map[string]bool{}
	err := h.store.ScanDue(context.Background(), persistence.DueWork{At: journey.RoutedKeyAt}, journey.RoutedKeyAt.Add(time.Second), func(w persistence.DueWork) bool {
		if w.Kind == journey.DueRouted && !seen[w.Customer] {
			seen[w.Customer] = true
			if announce {
				h.route(ctx, &announceMsg{customer: w.Customer})
			} else {
				h.route(ctx, &wakeMsg{customer: w.Customer})
			}
		}
		return true
	})
	if err != nil {
		h.rt.cfg.Logger.Error("routed conversations scan failed", "partition", h.partition, "err", err)
	}
}

// deliverDue sends every due item to its customer and arms a timer for the
// next one.
func (h *host) deliverDue(ctx actor.Context) {
	if h.shutdown {
		return
	}
	// Customers tell the host of work due before the armed tick only; from
	// here on every customer tells it (dueAt), since the scan below may have
	// begun before the work's key was durable.
	h.rt.dueArmed[h.partition].Store(0)
	now := h.rt.cfg.Now()
	h.dueScanAt = now
	from := h.dueFrom
	full := now.Sub(h.dueFullAt) >= dueRescanEvery || now.Before(h.dueFullAt)
	if full {
		from, h.dueFullAt = persistence.DueWork{}, now
	}
	n := 0
	var next time.Time
	var last persistence.DueWork
	err := h.store.ScanDue(context.Background(), from, now.Add(100*365*24*time.Hour), func(w persistence.DueWork) bool {
		if w.At.After(now) {
			next = w.At
			return false
		}
		h.route(ctx, &dueMsg{work: w})
		n++
		last = w
		return n < dueScanMax
	})
	switch {
	case err != nil:
		h.rt.cfg.Logger.Error("due work scan failed", "partition", h.partition, "err", err)
		next = now.Add(time.Second)
		h.dueFrom = from
	case n >= dueScanMax:
		// The rest just after the last item (from its time, the items
		// delivered and not yet done would come again, and again: all of
		// them, past dueScanMax items due at one time).
		next, h.dueFrom = now, last
	default:
		h.dueFrom = persistence.DueWork{At: now}
	}
	if n > 0 {
		h.dueUnsure = true
	} else if full && err == nil {
		h.dueUnsure = false // every item delivered before is done
	}
	if rescan := h.dueFullAt.Add(dueRescanEvery); h.dueUnsure && (next.IsZero() || next.After(rescan)) {
		next = rescan
	}
	h.dueNext = time.Time{}
	if !next.IsZero() {
		h.armDue(ctx, next)
	}
}

// tellDue tells partition p's host (host) of a customer's due work at at,
// once the work's key is durable: told before, a tick could scan the store
// before the key was there and arm for a later item, or for none, and the
// work would wait for a tick someone else asked for. Work due no earlier
// than the armed tick is not told at all: that tick's scan begins after the
// key is durable (the host clears dueArmed before it scans) and finds it,
// or an earlier item, as the next. (A broadcast's every target adds due
// work: a message to the host each, on the pool beside live work.)
func (r *Runtime) tellDue(host *actor.PID, p int, at time.Time) {
	if armed := r.dueArmed[p].Load(); armed != 0 && at.UnixNano() >= armed {
		return
	}
	r.system.Root.Send(host, &dueAt{at: at})
}

// armDue makes sure a tick comes no later than at.
func (h *host) armDue(ctx actor.Context, at time.Time) {
	if h.shutdown || (!h.dueNext.IsZero() && !at.Before(h.dueNext)) {
		return
	}
	if h.dueTimer != nil {
		h.dueTimer.Stop()
	}
	h.dueNext = at
	h.rt.dueArmed[h.partition].Store(at.UnixNano())
	self, root := ctx.Self(), h.rt.system.Root
	now := h.rt.cfg.Now()
	// No sooner than dueTickMin after the last scan (and no later for
	// it: a clock set back does not hold the tick back).
	wait := max(at.Sub(now), min(h.dueScanAt.Add(dueTickMin).Sub(now), dueTickMin), 0)
	h.dueTimer = time.AfterFunc(wait, func() { root.Send(self, &dueTick{}) })
}
