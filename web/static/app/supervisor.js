// The supervisor's dashboard (PROTOCOL section 10): queues and agents live,
// any customer's journey by id, phone or email (live over the agent
// WebSocket), and broadcasts with their progress.

import { h, clear, fmtTime, fmtDuration, toast } from './dom.js';
import * as api from './api.js';
import { Journey, TimelineView, renderContext, renderSummary } from './journey.js';

const LIVE_POLL_MS = 1000; // queues and agents have no push frames: read each second
const BROADCAST_POLL_MS = 2000;
const BROADCASTS_SHOWN = 20;

// poll runs f now and every ms until the returned stop is called; a
// failure shows in status and the polling goes on.
function poll(ms, f, status) {
  let stopped = false;
  let timer = null;
  const run = async () => {
    try { await f(); status.textContent = `Updated ${fmtTime(new Date())}`; status.classList.remove('error'); } catch (e) {
      status.textContent = e.status === 0 ? 'The server cannot be reached; retrying…' : `Error: ${e.message}`;
      status.classList.add('error');
    }
    if (!stopped) timer = setTimeout(run, ms);
  };
  run();
  return () => { stopped = true; clearTimeout(timer); };
}

export function mountLive(main) {
  const status = h('span', { class: 'muted', role: 'status' }, 'Loading…');
  const queues = h('tbody', { id: 'queues-body' });
  const agents = h('tbody', { id: 'agents-body' });
  const tile = (id, label) => h('div', { class: 'card kpi', id }, h('div', { class: 'value' }, '–'), h('div', { class: 'label' }, label));
  const tiles = { waiting: tile('live-waiting', 'Waiting now'), longest: tile('live-longest', 'Longest wait'),
    available: tile('live-available', 'Agents available'), busy: tile('live-busy', 'Conversations with agents') };
  const setTile = (t, v) => { t.querySelector('.value').textContent = v; };
  clear(main).append(h('div', { class: 'page' },
    h('div', { class: 'row' }, h('h1', {}, 'Queues and agents'), status),
    h('div', { class: 'kpis', role: 'group', 'aria-label': 'Now' }, Object.values(tiles)),
    h('div', { class: 'grid2' },
      h('section', { class: 'card', 'aria-labelledby': 'q-h' }, h('h2', { id: 'q-h' }, 'Queues'),
        h('table', { id: 'queues' }, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Queue'), h('th', { scope: 'col', class: 'num' }, 'Waiting'),
          h('th', { scope: 'col', class: 'num' }, 'Longest wait'), h('th', { scope: 'col', class: 'num' }, 'Agents available'))), queues)),
      h('section', { class: 'card', 'aria-labelledby': 'a-h' }, h('h2', { id: 'a-h' }, 'Agents'),
        h('table', { id: 'agents' }, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Agent'), h('th', { scope: 'col' }, 'Status'),
          h('th', { scope: 'col' }, 'Load'), h('th', { scope: 'col' }, 'Skills'))), agents)))));
  return poll(LIVE_POLL_MS, async () => {
    const [q, a] = await Promise.all([api.api('/v1/queues'), api.api('/v1/agents')]);
    const qs = q.queues || [];
    const as = a.agents || [];
    setTile(tiles.waiting, String(qs.reduce((n, x) => n + x.waiting, 0)));
    setTile(tiles.longest, qs.some((x) => x.waiting) ? fmtDuration(Math.max(...qs.map((x) => x.longest_wait_ms || 0))) : '–');
    setTile(tiles.available, `${as.filter((x) => x.status === 'available').length} / ${as.length}`);
    setTile(tiles.busy, String(as.reduce((n, x) => n + x.load, 0)));
    clear(queues).append(...(q.queues || []).map((x) => h('tr', { dataset: { queue: x.name } },
      h('th', { scope: 'row' }, x.name), h('td', { class: 'num waiting' }, String(x.waiting)),
      h('td', { class: 'num' }, x.waiting ? fmtDuration(x.longest_wait_ms) : '–'), h('td', { class: 'num' }, String(x.agents_available)))));
    if (!(q.queues || []).length) queues.append(h('tr', {}, h('td', { colspan: '4', class: 'muted' }, 'No queues configured.')));
    clear(agents).append(...(a.agents || []).map((x) => {
      const cap = typeof x.capacity === 'number' ? x.capacity : (x.capacity && x.capacity.total) || Object.values(x.capacity || {}).reduce((s, n) => s + n, 0);
      return h('tr', { dataset: { agent: x.id } }, h('th', { scope: 'row' }, x.id),
        h('td', {}, h('span', { class: `pill ${x.status}` }, x.status.replace('_', ' ')), x.reason ? h('span', { class: 'muted' }, ` ${x.reason}`) : null),
        h('td', {}, h('div', { class: 'row' }, h('div', { class: 'bar', role: 'img', 'aria-label': `${x.load} of ${cap}` }, loadBar(x.load, cap)), `${x.load} / ${cap}`, x.offers ? h('span', { class: 'pill offered' }, `${x.offers} offer(s)`) : null)),
        h('td', {}, (x.skills || []).join(', ') || '–'));
    }));
    if (!(a.agents || []).length) agents.append(h('tr', {}, h('td', { colspan: '4', class: 'muted' }, 'No agents configured.')));
  }, status);
}

function loadBar(load, cap) {
  const s = h('span', {});
  s.style.width = `${cap ? Math.min(100, (100 * load) / cap) : 0}%`;
  return s;
}

// mountJourney looks a customer up by id, phone or email and follows it.
export function mountJourney(main, sock, initial) {
  const input = h('input', { id: 'lookup', type: 'search', placeholder: 'c-42, +15551230000 or ana@example.com', size: '36', value: initial || '' });
  const out = h('div', { id: 'journey-out' });
  let current = null;
  const unfollow = () => {
    if (current) sock.send({ type: 'unsubscribe', customer: current.journey.customer }).catch(() => {});
    current = null;
  };
  const find = async (q) => {
    q = q.trim();
    if (!q) return;
    unfollow();
    clear(out).append(h('p', { class: 'muted' }, 'Looking up…'));
    try {
      let id = q;
      const kind = q.includes('@') ? 'email' : (/^\+?[\d\s().-]{6,}$/.test(q) ? 'phone' : '');
      if (kind) {
        // An id may look like a phone number: an unknown phone is tried as an id.
        try { id = (await api.findCustomer(kind, q)).customer; } catch (e) { if (e.status !== 404 || kind === 'email') throw e; }
      }
      const ctx = await api.customer(id);
      history.replaceState(null, '', `#/journey/${encodeURIComponent(id)}`);
      show(ctx);
    } catch (e) {
      clear(out).append(h('p', { class: 'error', role: 'alert' }, e.status === 404 ? `No customer found for “${q}”.` : e.message));
    }
  };
  const show = (ctx) => {
    const journey = new Journey(ctx);
    const tv = new TimelineView(journey, {
      onGap: async () => { const p = await api.timeline(journey.customer, journey.last, 1000); p.events.forEach((e) => tv.push(e)); },
      onEarlier: async () => { const upTo = journey.first - 1; const after = Math.max(0, upTo - 100); tv.prepend((await api.timeline(journey.customer, after, upTo - after)).events); },
    });
    const side = h('aside', { class: 'context card', 'aria-label': 'Customer context' });
    current = { journey, tv, side };
    api.nextBestAction(ctx.customer).then((nba) => renderContext(side, journey.ctx, nba), () => renderContext(side, journey.ctx, null));
    renderContext(side, ctx, null);
    clear(out).append(h('div', { class: 'row' }, h('h2', {}, ctx.customer), ctx.conversation ? h('span', { class: `pill ${ctx.conversation.state}` }, ctx.conversation.state) : null),
      renderSummary(journey.summary()), h('div', { class: 'journey' }, tv.el, side));
    follow();
  };
  const follow = () => {
    if (!current || !sock.online) return;
    sock.send({ type: 'subscribe', customer: current.journey.customer, after: current.journey.last }).catch((e) => {
      if (e.code !== 'offline' && e.code !== 'conflict') toast(`Live updates: ${e.message}`, true);
    });
  };
  const onFrame = (ev) => {
    const f = ev.detail;
    if (f.type === 'event' && current && f.customer === current.journey.customer) current.tv.push(f.event);
  };
  sock.addEventListener('frame', onFrame);
  sock.addEventListener('online', follow);
  clear(main).append(h('div', { class: 'page' }, h('h1', {}, 'Customer journey'),
    h('form', { class: 'row', role: 'search', onsubmit: (ev) => { ev.preventDefault(); find(input.value); } },
      h('div', {}, h('label', { for: 'lookup' }, 'Customer id, phone or email'), input),
      h('button', { class: 'btn primary', type: 'submit', id: 'lookup-go' }, 'Show journey')), out));
  if (initial) find(initial);
  return () => { unfollow(); sock.removeEventListener('frame', onFrame); sock.removeEventListener('online', follow); };
}

export function mountBroadcasts(main) {
  const status = h('span', { class: 'muted', role: 'status' }, 'Loading…');
  const list = h('div', { id: 'broadcasts', class: 'grid2' });
  clear(main).append(h('div', { class: 'page' }, h('div', { class: 'row' }, h('h1', {}, 'Broadcasts'), status), list));
  return poll(BROADCAST_POLL_MS, async () => {
    const { broadcasts = [] } = await api.api('/v1/broadcasts');
    const shown = broadcasts.slice(0, BROADCASTS_SHOWN);
    const details = await Promise.all(shown.map((b) => api.api(`/v1/broadcasts/${encodeURIComponent(b.id)}`).catch(() => null)));
    clear(list);
    if (!shown.length) list.append(h('p', { class: 'muted' }, 'No broadcast yet. POST /v1/broadcasts starts one (PROTOCOL section 5).'));
    shown.forEach((b, i) => list.append(broadcastCard(b, details[i])));
  }, status);
}

function broadcastCard(b, d) {
  const s = d || {};
  const sup = s.suppressed || {};
  const suppressed = Object.values(sup).reduce((a, n) => a + n, 0);
  const done = (s.sent || 0) + suppressed + (s.held || 0);
  const total = s.targeted || 0;
  const frac = total ? Math.min(1, done / total) : (b.state === 'done' ? 1 : 0);
  const bar = h('span', {});
  bar.style.width = `${100 * frac}%`;
  return h('section', { class: 'card', dataset: { broadcast: b.id }, 'aria-label': `Broadcast ${b.id}` },
    h('div', { class: 'row' }, h('strong', {}, b.id), h('span', { class: `pill ${b.state}` }, b.state), b.resolved ? h('span', { class: 'pill done' }, 'resolved') : null,
      h('span', { class: 'muted' }, `${b.event} · ${fmtTime(b.created)}`)),
    h('p', {}, `“${b.text}”`),
    h('div', { class: 'bar', role: 'progressbar', 'aria-label': 'progress', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(Math.round(100 * frac)) }, bar),
    h('dl', { class: 'kv' },
      h('dt', {}, 'targeted'), h('dd', {}, String(total)), h('dt', {}, 'sent'), h('dd', {}, String(s.sent || 0)),
      h('dt', {}, 'held'), h('dd', {}, String(s.held || 0)),
      h('dt', {}, 'suppressed'), h('dd', {}, `${suppressed}${suppressed ? ` (${Object.entries(sup).filter(([, n]) => n).map(([k, n]) => `${k} ${n}`).join(', ')})` : ''}`),
      h('dt', {}, 'callbacks accepted'), h('dd', {}, String(s.callbacks_accepted || 0))));
}
