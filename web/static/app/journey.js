// A customer's journey as the desk and the dashboard show it: the model
// (events by seq, contiguous, none twice) and its rendering (the
// cross-channel timeline, the hand-over summary, the context panel).

import { h, clear, fmtTime, channelIcon, icon } from './dom.js';

const TIMELINE_MAX = 2000; // events kept in the page per customer

// Journey keeps a customer's events in seq order, contiguous from first to
// last: add refuses a duplicate ('dup') and an event past a gap ('gap').
export class Journey {
  constructor(ctx) {
    this.customer = ctx.customer;
    this.bySeq = new Map();
    this.first = 0;
    this.last = 0;
    this.ctx = ctx;
    this.setContext(ctx);
  }

  setContext(ctx) {
    this.ctx = ctx;
    const events = [...(ctx.timeline || [])].sort((a, b) => a.seq - b.seq);
    if (this.last === 0) {
      for (const e of events) this.bySeq.set(e.seq, e);
      this.first = events.length ? events[0].seq : (ctx.seq || 0) + 1;
      this.last = Math.max(ctx.seq || 0, events.length ? events[events.length - 1].seq : 0);
      return [];
    }
    const added = [];
    for (const e of events) if (this.add(e) === 'new') added.push(e);
    return added;
  }

  add(e) {
    if (this.bySeq.has(e.seq) || e.seq <= this.last) return 'dup';
    if (e.seq > this.last + 1) return 'gap';
    this.bySeq.set(e.seq, e);
    this.last = e.seq;
    while (this.bySeq.size > TIMELINE_MAX) { this.bySeq.delete(this.first); this.first++; }
    return 'new';
  }

  // prepend adds earlier events (seq < first), contiguous down from first.
  prepend(events) {
    const older = events.filter((e) => e.seq < this.first && !this.bySeq.has(e.seq)).sort((a, b) => b.seq - a.seq);
    const added = [];
    for (const e of older) {
      if (e.seq !== this.first - 1) break;
      this.bySeq.set(e.seq, e);
      this.first = e.seq;
      added.unshift(e);
    }
    return added;
  }

  events() { return [...this.bySeq.values()].sort((a, b) => a.seq - b.seq); }

  // summary: the hand-over summary of the latest routing decision, else
  // what the open conversation says the bot did.
  summary() {
    const evs = this.events();
    for (let i = evs.length - 1; i >= 0; i--) {
      const e = evs[i];
      if (e.type === 'routing.decided' && e.data) {
        return { ...(e.data.summary || {}), reason: e.data.reason || (e.data.rule ? `rule ${e.data.rule}` : ''), queue: e.data.queue };
      }
    }
    const cv = this.ctx.conversation;
    if (cv && (cv.asked || cv.bot_turns)) return { asked: cv.asked, intent: (cv.intents || []).at(-1), bot_turns: cv.bot_turns, articles: cv.articles, sentiment: cv.sentiments };
    return null;
  }
}

function who(actor) {
  if (!actor) return 'System';
  if (actor === 'customer') return 'Customer';
  if (actor === 'ai') return 'Bot';
  if (actor.startsWith('agent:')) return actor.slice(6);
  if (actor.startsWith('rule:')) return `Rule ${actor.slice(5)}`;
  if (actor.startsWith('workflow:')) return `Workflow ${actor.slice(9)}`;
  return actor;
}

function meta(e, ...extra) {
  return h('div', { class: 'meta' }, h('span', {}, who(e.actor)), e.channel ? h('span', {}, e.channel) : null,
    h('time', { datetime: e.recorded_at }, fmtTime(e.recorded_at)), ...extra);
}

function cites(articles, label = 'Cited') {
  if (!articles || !articles.length) return null;
  return h('div', { class: 'cites' }, h('span', { class: 'sr-only' }, `${label}: `),
    articles.map((a) => h('span', { class: 'cite', title: `knowledge article ${a}` }, a)));
}

function sys(e, iconName, label, ...body) {
  return h('div', { class: 'ev sys', dataset: { seq: e.seq, type: e.type } },
    h('span', { class: 'icon' }, icon(iconName, label)),
    h('div', { class: 'body' }, ...body, h('div', { class: 'meta' }, h('time', { datetime: e.recorded_at }, fmtTime(e.recorded_at)), h('span', {}, `#${e.seq}`))));
}

function short(data, max = 140) {
  if (!data || typeof data !== 'object') return '';
  const s = Object.entries(data).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join(', ');
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

// renderEvent is one timeline item; every event has exactly one element
// carrying data-seq (receipts mark their message and add a hidden one).
export function renderEvent(e, root) {
  const d = e.data || {};
  switch (e.type) {
    case 'message.received':
      return h('div', { class: 'ev in', dataset: { seq: e.seq, type: e.type } },
        h('span', { class: 'icon' }, channelIcon(e.channel)),
        h('div', { class: 'body' }, meta(e, d.subject ? h('strong', {}, `“${d.subject}”`) : null),
          h('div', { class: 'bubble' }, e.text || (d.type ? `[${d.type}]` : ''))));
    case 'message.sent': {
      const byAI = e.actor === 'ai';
      return h('div', { class: `ev out${byAI ? ' by-ai' : ''}`, dataset: { seq: e.seq, type: e.type, outbound: d.outbound || '', ref: d.ref || '' } },
        h('span', { class: 'icon' }, e.channel ? channelIcon(e.channel) : icon(byAI ? 'bot' : 'agent', who(e.actor))),
        h('div', { class: 'body' }, meta(e, d.proactive ? h('span', { class: 'pill' }, 'proactive') : null, h('span', { class: 'receipt' })),
          h('div', { class: 'bubble' }, d.redacted ? '[redacted]' : (e.text || ''))));
    }
    case 'message.delivered':
    case 'message.failed': {
      const target = root && d.outbound ? root.querySelector(`[data-outbound="${CSS.escape(d.outbound)}"] .receipt`) : null;
      if (target) {
        target.textContent = e.type === 'message.delivered' ? '✓ delivered' : `✗ failed${d.reason ? `: ${d.reason}` : ''}`;
        return h('span', { hidden: true, dataset: { seq: e.seq, type: e.type } });
      }
      return sys(e, 'system', 'receipt', `Message ${e.type === 'message.delivered' ? 'delivered' : `failed: ${d.reason || ''}`}`);
    }
    case 'ai.replied':
      return sys(e, 'bot', 'bot', d.escalated
        ? h('span', {}, 'Bot handed over: ', h('strong', {}, d.escalated))
        : h('span', {}, 'Bot answered: intent ', h('strong', {}, d.intent || 'unknown'),
          ` (confidence ${Number(d.confidence || 0).toFixed(2)}, sentiment ${Number(d.sentiment || 0).toFixed(2)})`),
      cites(d.articles));
    case 'ai.kb_searched':
      return sys(e, 'bot', 'bot', h('span', {}, 'Bot searched the knowledge base', d.query ? ` for “${d.query}”` : ''), cites(d.articles, 'Found'));
    case 'routing.decided':
      return sys(e, 'route', 'routing', h('span', {}, d.kind === 'callback' ? 'Callback queued to ' : 'Routed to queue ', h('strong', {}, d.queue || '?'),
        ` (priority ${d.priority ?? 0})`, ' · reason: ', h('strong', {}, d.rule ? `rule ${d.rule}` : (d.reason || '–')),
        d.deferred ? ' · when the bot hands over' : '', d.bypass_bot ? ' · bypassing the bot' : ''));
    case 'agent.offered':
      return sys(e, 'agent', 'routing', h('span', {}, 'Offered to ', h('strong', {}, d.agent || '?'), ` (${d.reason || ''}) from ${d.queue || ''}`),
        d.candidates && d.candidates.length ? h('ul', { class: 'cands', 'aria-label': 'candidates considered' },
          d.candidates.map((c) => h('li', {}, h('span', { class: c.eligible ? 'yes' : '' }, c.agent), ` ${c.eligible ? '✓' : '✗'} ${c.why || ''}`))) : null);
    case 'agent.assigned':
      return sys(e, 'agent', 'agent', h('span', {}, h('strong', {}, d.agent), ' accepted the conversation', d.queue ? ` from ${d.queue}` : ''));
    case 'agent.transferred':
      return sys(e, 'route', 'transfer', h('span', {}, h('strong', {}, d.agent || 'The runtime'), ' transferred it to ',
        h('strong', {}, d.to_agent ? `agent ${d.to_agent}` : `queue ${d.queue}`), d.reason ? ` (${d.reason})` : ''));
    case 'agent.wrapped_up':
      return sys(e, 'agent', 'wrap-up', h('span', {}, h('strong', {}, d.agent), ' wrapped up: ', h('strong', {}, d.disposition), d.note ? ` — ${d.note}` : ''));
    case 'routing.revoked':
      return sys(e, 'route', 'revoked', h('span', {}, `Offer to ${d.agent || '?'} taken back: `, h('strong', {}, d.reason || '')));
    case 'workflow.step':
      return sys(e, 'workflow', 'workflow', h('span', {}, 'Workflow ', h('strong', {}, d.workflow), ` · ${d.step} → `, h('strong', {}, d.result || ''),
        d.error ? ` (${d.error})` : '', d.attempts_left ? ` · ${d.attempts_left} attempts left` : ''));
    case 'journey.case_opened':
    case 'journey.case_resolved':
      return sys(e, 'case', 'case', h('span', {}, e.type.endsWith('opened') ? 'Case opened: ' : 'Case resolved: ', h('strong', {}, d.subject || d.case || '')));
    case 'journey.conversation_opened':
    case 'journey.conversation_closed':
      return sys(e, 'system', 'conversation', e.type.endsWith('opened') ? 'Conversation opened' : `Conversation closed${d.reason ? ` (${d.reason})` : ''}`);
    case 'proactive.sent':
    case 'proactive.suppressed':
    case 'proactive.held':
      return sys(e, 'proactive', 'proactive', h('span', {}, `Proactive message ${e.type.split('.')[1]}`, d.reason ? ` · ${d.reason}` : '',
        d.offer ? ` · offer ${d.offer}` : '', d.broadcast ? ` · broadcast ${d.broadcast}` : ''));
    case 'profile.updated':
      return sys(e, 'agent', 'profile', `Profile updated: ${Object.keys(d).join(', ')}`);
    default:
      if (e.actor === 'customer') {
        return h('div', { class: 'ev sys', dataset: { seq: e.seq, type: e.type } },
          h('span', { class: 'icon' }, channelIcon(e.channel)),
          h('div', { class: 'body' }, h('span', {}, h('strong', {}, e.type), e.channel ? ` on ${e.channel}` : '', e.text ? `: ${e.text}` : ''),
            h('div', { class: 'muted' }, short(d)), h('div', { class: 'meta' }, h('time', {}, fmtTime(e.recorded_at)), h('span', {}, `#${e.seq}`))));
      }
      return sys(e, 'system', e.type, h('span', {}, h('strong', {}, e.type), ' ', h('span', { class: 'muted' }, short(d))));
  }
}

export function renderSummary(s) {
  if (!s) return null;
  const trend = s.trend ? ` · sentiment ${s.trend}` : '';
  return h('section', { class: 'summary', 'aria-label': 'Hand-over summary' },
    h('div', {}, h('strong', {}, 'Hand-over summary'), s.reason ? ` · ${s.reason}` : '', s.queue ? ` · queue ${s.queue}` : ''),
    s.asked ? h('div', {}, 'Asked: “', s.asked, '”') : null,
    h('div', { class: 'muted' }, `Intent ${s.intent || 'unknown'} · ${s.bot_turns || 0} bot turn(s)${trend}`),
    cites(s.articles, 'Articles shown'));
}

function dl(obj) {
  const entries = Object.entries(obj || {}).filter(([, v]) => v !== undefined && v !== null && v !== '');
  if (!entries.length) return h('p', { class: 'muted' }, 'None');
  return h('dl', { class: 'kv' }, entries.map(([k, v]) => [h('dt', {}, k), h('dd', {}, Array.isArray(v) ? v.join(', ') : (typeof v === 'object' ? JSON.stringify(v) : String(v)))]));
}

// renderContext fills the side panel: identities, profile, conversation,
// cases, and the next best action when given.
export function renderContext(el, ctx, nba) {
  clear(el);
  const cv = ctx.conversation;
  el.append(
    h('section', { 'aria-label': 'Identities' }, h('h3', {}, 'Identities'), dl(ctx.identities)),
    h('section', { 'aria-label': 'Profile' }, h('h3', {}, 'Profile'), dl(ctx.profile)),
    h('section', { 'aria-label': 'Conversation' }, h('h3', {}, 'Conversation'), cv
      ? dl({ state: cv.state, channel: cv.channel, queue: cv.queue, agent: cv.agent, since: fmtTime(cv.since) })
      : h('p', { class: 'muted' }, 'No conversation open'), ctx.last_agent ? h('p', { class: 'muted' }, `Last agent: ${ctx.last_agent}`) : null),
    h('section', { 'aria-label': 'Cases' }, h('h3', {}, 'Cases'), (ctx.cases || []).length
      ? h('ul', {}, ctx.cases.map((c) => h('li', {}, h('span', { class: `pill ${c.status}` }, c.status), ' ', c.subject || c.id, h('div', { class: 'muted' }, `opened ${fmtTime(c.opened)}`))))
      : h('p', { class: 'muted' }, 'None')),
    h('section', { 'aria-label': 'Next best action', class: 'nba' }, h('h3', {}, 'Next best action'), renderNBA(nba)),
  );
}

function renderNBA(nba) {
  if (nba === undefined) return h('p', { class: 'muted' }, 'Shown once the conversation is yours.');
  if (nba === null) return h('p', { class: 'muted' }, 'Not available.');
  if (!nba.actions || !nba.actions.length) return h('p', { class: 'muted' }, 'No eligible offer.');
  return h('ol', {}, nba.actions.map((a) => h('li', {}, h('strong', {}, a.offer), ` · score ${a.score}`, a.channel ? ` · via ${a.channel}` : '',
    h('div', {}, a.text), a.why && a.why.length ? h('div', { class: 'muted' }, `why: ${[].concat(a.why).join('; ')}`) : null)));
}

// TimelineView renders a Journey into a scrolling list and keeps it live.
export class TimelineView {
  constructor(journey, { onGap, onEarlier } = {}) {
    this.journey = journey;
    this.onGap = onGap;
    this.el = h('div', { class: 'timeline', role: 'log', 'aria-label': `Timeline of ${journey.customer}`, tabindex: '0', 'aria-live': 'polite' });
    this.earlier = h('button', { class: 'btn earlier', type: 'button', onclick: () => onEarlier && onEarlier() }, 'Show earlier events');
    this.render();
  }

  render() {
    clear(this.el);
    if (this.journey.first > 1) this.el.append(this.earlier);
    for (const e of this.journey.events()) this.el.append(renderEvent(e, this.el));
    this.el.dataset.last = this.journey.last;
    this.scrollEnd();
  }

  // push one live event; a gap asks onGap to fill it from the HTTP API.
  push(e) {
    const r = this.journey.add(e);
    if (r === 'new') {
      const atEnd = this.el.scrollHeight - this.el.scrollTop - this.el.clientHeight < 80;
      this.el.querySelectorAll('.ev.pending').forEach((p) => { if (e.data && p.dataset.ref === e.data.ref) p.remove(); });
      this.el.append(renderEvent(e, this.el));
      this.el.dataset.last = this.journey.last;
      if (atEnd) this.scrollEnd();
    } else if (r === 'gap' && this.onGap) {
      this.onGap(this.journey.last);
    }
    return r;
  }

  prepend(events) {
    const added = this.journey.prepend(events);
    if (added.length) this.render();
  }

  pending(ref, text) {
    this.el.append(h('div', { class: 'ev out pending', dataset: { ref } }, h('span', { class: 'icon' }, icon('agent', 'you')),
      h('div', { class: 'body' }, h('div', { class: 'meta' }, 'Sending…'), h('div', { class: 'bubble' }, text))));
    this.scrollEnd();
  }

  scrollEnd() { requestAnimationFrame(() => { this.el.scrollTop = this.el.scrollHeight; }); }
}
