// The agent desk (PROTOCOL section 10): presence with capacity, offers
// with the time left, assigned conversations as tabs, each with its
// journey, a reply box, transfer and wrap-up. Live over the agent
// WebSocket; after a reconnect every conversation resumes from the last seq
// it shows (subscribe with after), so nothing is missed or shown twice.

import { h, clear, fmtTime, toast, channelIcon } from './dom.js';
import * as api from './api.js';
import { newRef } from './socket.js';
import { Journey, TimelineView, renderContext, renderSummary } from './journey.js';

const SAVED = 'throughline.desk';
const DISPOSITIONS = ['resolved', 'follow_up', 'escalated', 'no_response', 'other'];
// Events after which the context panel is read again.
const CONTEXT_TYPES = /^(profile\.|identity\.|journey\.case|journey\.conversation|agent\.|routing\.)/;

export function mountDesk(main, me, sock) {
  const state = {
    presence: { status: 'offline', capacity: null, load: 0 },
    wanted: loadSaved().presence || null, // the presence the agent chose: sent again after a reconnect
    offers: new Map(), // conversation -> offer frame
    convs: new Map(), // customer -> {conversation, journey, tv, nba, unread}
    selected: null, // {kind: 'offer'|'conv', key}
  };

  const els = {
    status: h('span', { class: 'pill offline', id: 'presence-status' }, 'offline'),
    load: h('span', { class: 'load', id: 'presence-load' }, '0 / –'),
    capacity: h('input', { id: 'capacity', type: 'number', min: '0', max: '100', value: String(state.wanted?.capacity ?? 2), class: 'cap' }),
    offers: h('div', { id: 'offers', class: 'offers', role: 'list', 'aria-label': 'Offers' }),
    offersCount: h('span', { class: 'pill' }, '0'),
    tabs: h('div', { id: 'conversations', class: 'tabs', role: 'tablist', 'aria-orientation': 'vertical', 'aria-label': 'Assigned conversations' }),
    work: h('section', { class: 'work', id: 'work', role: 'tabpanel', 'aria-label': 'Selected conversation' }),
  };
  els.tabs.addEventListener('keydown', tabKeys);

  const presenceButtons = ['available', 'not_ready', 'offline'].map((s) => h('button', {
    class: 'btn', type: 'button', id: `presence-${s}`, 'aria-pressed': 'false',
    onclick: () => setPresence(s),
  }, { available: 'Available', not_ready: 'Not ready', offline: 'Offline' }[s]));

  clear(main).append(h('div', { class: 'desk' },
    h('aside', { class: 'side', 'aria-label': 'Desk' },
      h('section', { class: 'presence card', 'aria-labelledby': 'presence-h' },
        h('h2', { id: 'presence-h' }, 'Presence'),
        h('div', { class: 'row' }, els.status, h('span', { class: 'muted' }, 'load'), els.load),
        h('div', { class: 'field' }, h('label', { for: 'capacity' }, 'Capacity (conversations at once)'), els.capacity),
        h('div', { class: 'row', role: 'group', 'aria-label': 'Set presence' }, presenceButtons)),
      h('section', { 'aria-labelledby': 'offers-h' }, h('h2', { id: 'offers-h' }, 'Offers ', els.offersCount), els.offers),
      h('section', { 'aria-labelledby': 'conv-h' }, h('h2', { id: 'conv-h' }, 'My conversations'), els.tabs)),
    els.work));

  async function setPresence(status) {
    const capacity = Math.max(0, Number(els.capacity.value) || 0);
    state.wanted = { status, capacity };
    save();
    try {
      await sock.send({ type: 'presence', status, capacity });
    } catch (e) {
      toast(e.code === 'offline' ? 'Offline: your presence is set once the connection is back.' : `Presence: ${e.message}`, e.code !== 'offline');
    }
  }

  function renderPresence() {
    const p = state.presence;
    els.status.textContent = p.status.replace('_', ' ');
    els.status.className = `pill ${p.status}`;
    const cap = typeof p.capacity === 'number' ? p.capacity : (p.capacity && p.capacity.total) || '–';
    els.load.textContent = `${state.convs.size} / ${cap}`;
    for (const b of presenceButtons) b.setAttribute('aria-pressed', String(b.id === `presence-${p.status}`));
  }

  // Offers

  function renderOffers() {
    clear(els.offers);
    els.offersCount.textContent = String(state.offers.size);
    if (!state.offers.size) els.offers.append(h('p', { class: 'muted' }, state.presence.status === 'available' ? 'Waiting for the next conversation…' : 'Go available to receive offers.'));
    for (const o of state.offers.values()) {
      const sel = state.selected?.kind === 'offer' && state.selected.key === o.conversation;
      const ch = o.context?.conversation?.channel;
      els.offers.append(h('div', {
        class: 'offer', role: 'listitem', tabindex: '0', 'aria-selected': String(sel), dataset: { conversation: o.conversation, customer: o.customer },
        onclick: () => select('offer', o.conversation), onkeydown: (ev) => { if (ev.key === 'Enter') select('offer', o.conversation); },
      },
      h('div', { class: 'row' }, ch ? channelIcon(ch) : null, h('strong', {}, o.customer), h('span', { class: 'pill' }, o.kind || 'conversation'), h('span', { class: 'muted' }, o.queue)),
      h('div', { class: 'timer', role: 'progressbar', 'aria-label': 'time left', 'aria-valuemin': '0', 'aria-valuemax': '100' }, h('span', {})),
      h('div', { class: 'row' }, h('span', { class: 'left muted' }, ''),
        h('button', { class: 'btn ok', type: 'button', 'aria-label': `Accept ${o.customer}`, onclick: (ev) => { ev.stopPropagation(); accept(o); } }, 'Accept'),
        h('button', { class: 'btn', type: 'button', 'aria-label': `Decline ${o.customer}`, onclick: (ev) => { ev.stopPropagation(); decline(o); } }, 'Decline'))));
    }
    tickOffers();
  }

  function tickOffers() {
    const now = Date.now();
    for (const card of els.offers.querySelectorAll('.offer')) {
      const o = state.offers.get(card.dataset.conversation);
      if (!o) continue;
      const left = Math.max(0, new Date(o.expires).getTime() - now);
      const total = Math.max(1000, o.total || left);
      card.querySelector('.left').textContent = `${Math.ceil(left / 1000)}s left`;
      const bar = card.querySelector('.timer');
      bar.setAttribute('aria-valuenow', String(Math.round((100 * left) / total)));
      bar.firstChild.style.width = `${(100 * left) / total}%`;
    }
  }
  const ticker = setInterval(tickOffers, 1000);

  async function accept(o) {
    try {
      await sock.send({ type: 'accept', conversation: o.conversation });
      state.offers.delete(o.conversation);
      if (state.selected?.key === o.conversation) state.selected = { kind: 'conv', key: o.customer };
      renderOffers();
      renderWork();
    } catch (e) {
      if (e.code === 'offline') { toast('Offline: accept again once the connection is back.', true); return; }
      toast(`Accept: ${e.code === 'conflict' ? 'the offer has lapsed' : e.message}`, true);
      state.offers.delete(o.conversation);
      renderOffers();
      renderWork();
    }
  }

  async function decline(o) {
    try { await sock.send({ type: 'decline', conversation: o.conversation }); } catch (e) { toast(`Decline: ${e.message}`, true); }
    state.offers.delete(o.conversation);
    if (state.selected?.key === o.conversation) state.selected = null;
    renderOffers();
    renderWork();
  }

  // Conversations

  function addConversation(customer, conversation, ctx) {
    let c = state.convs.get(customer);
    if (!c) {
      const journey = new Journey(ctx);
      c = { customer, conversation, journey, nba: undefined, unread: 0 };
      c.tv = new TimelineView(journey, { onGap: () => fill(c), onEarlier: () => earlier(c) });
      state.convs.set(customer, c);
    } else {
      c.conversation = conversation;
      c.journey.ctx = ctx;
    }
    save();
    subscribe(c);
    loadNBA(c);
    renderTabs();
    renderPresence();
    return c;
  }

  function subscribe(c) {
    if (!sock.online) return; // done on reconnect
    sock.send({ type: 'subscribe', customer: c.customer, after: c.journey.last }).catch((e) => {
      if (e.code === 'forbidden') drop(c.customer, 'The conversation is no longer yours.');
      else if (e.code !== 'offline' && e.code !== 'conflict') toast(`Live updates for ${c.customer}: ${e.message}`, true);
    });
  }

  async function fill(c) {
    try {
      const page = await api.timeline(c.customer, c.journey.last, 1000);
      for (const e of page.events) c.tv.push(e);
    } catch (e) { toast(`Timeline of ${c.customer}: ${e.message}`, true); }
  }

  async function earlier(c) {
    const upTo = c.journey.first - 1;
    const after = Math.max(0, upTo - 100);
    try {
      const page = await api.timeline(c.customer, after, upTo - after);
      c.tv.prepend(page.events);
    } catch (e) { toast(`Earlier events: ${e.message}`, true); }
  }

  async function loadNBA(c) {
    try { c.nba = await api.nextBestAction(c.customer); } catch { c.nba = null; }
    if (isSelected(c)) renderPanel(c);
  }

  let refreshTimer = new Map();
  function refreshContext(c) {
    clearTimeout(refreshTimer.get(c.customer));
    refreshTimer.set(c.customer, setTimeout(async () => {
      try {
        c.journey.ctx = await api.customer(c.customer);
        if (isSelected(c)) { renderPanel(c); renderHead(c); }
      } catch { /* no longer ours: the wrap-up or transfer removes it */ }
    }, 250));
  }

  function drop(customer, why) {
    const c = state.convs.get(customer);
    if (!c) return;
    state.convs.delete(customer);
    if (state.selected?.kind === 'conv' && state.selected.key === customer) state.selected = null;
    sock.send({ type: 'unsubscribe', customer }).catch(() => {});
    save();
    if (why) toast(why);
    renderTabs();
    renderWork();
    renderPresence();
  }

  function renderTabs() {
    clear(els.tabs);
    if (!state.convs.size) els.tabs.append(h('p', { class: 'muted' }, 'None yet.'));
    for (const c of state.convs.values()) {
      const sel = isSelected(c);
      const ch = c.journey.ctx.conversation?.channel;
      els.tabs.append(h('button', {
        class: 'tab', role: 'tab', type: 'button', id: `tab-${c.customer}`, 'aria-selected': String(sel), tabindex: sel ? '0' : '-1',
        dataset: { customer: c.customer }, onclick: () => select('conv', c.customer),
      }, ch ? channelIcon(ch) : null, h('span', {}, c.customer), c.unread && !sel ? h('span', { class: 'badge', 'aria-label': `${c.unread} new` }, String(c.unread)) : null));
    }
  }

  function tabKeys(ev) {
    const tabs = [...els.tabs.querySelectorAll('[role=tab]')];
    const i = tabs.indexOf(document.activeElement);
    if (i < 0) return;
    const next = { ArrowDown: i + 1, ArrowUp: i - 1, Home: 0, End: tabs.length - 1 }[ev.key];
    if (next === undefined) return;
    ev.preventDefault();
    const t = tabs[(next + tabs.length) % tabs.length];
    select('conv', t.dataset.customer);
    document.getElementById(t.id)?.focus();
  }

  function isSelected(c) { return state.selected?.kind === 'conv' && state.selected.key === c.customer; }

  function select(kind, key) {
    state.selected = { kind, key };
    if (kind === 'conv') { const c = state.convs.get(key); if (c) c.unread = 0; }
    renderOffers();
    renderTabs();
    renderWork();
  }

  // The work area: an offer's preview or a conversation.

  let panel = null;
  let head = null;
  function renderWork() {
    clear(els.work);
    panel = null;
    head = null;
    const sel = state.selected;
    if (sel?.kind === 'offer' && state.offers.has(sel.key)) return renderOfferPreview(state.offers.get(sel.key));
    const c = sel?.kind === 'conv' && state.convs.get(sel.key);
    if (!c) {
      els.work.append(h('div', { class: 'empty' }, h('h2', {}, 'No conversation selected'),
        h('p', {}, state.convs.size ? 'Pick one of your conversations on the left.' : 'Offers appear on the left when you are available.')));
      return;
    }
    head = h('header', { class: 'convo-head' });
    renderHead(c);
    panel = h('aside', { class: 'context', 'aria-label': 'Customer context' });
    renderPanel(c);
    els.work.append(h('div', { class: 'convo' }, head, renderSummary(c.journey.summary()), c.tv.el, composer(c)), panel);
    c.tv.scrollEnd();
  }

  function renderHead(c) {
    if (!head) return;
    const cv = c.journey.ctx.conversation || {};
    clear(head).append(h('h1', {}, c.customer), cv.channel ? h('span', { class: 'pill' }, cv.channel) : null,
      cv.state ? h('span', { class: `pill ${cv.state}` }, cv.state) : null, cv.queue ? h('span', { class: 'muted' }, `queue ${cv.queue}`) : null,
      h('span', { class: 'muted' }, c.conversation));
  }

  function renderPanel(c) { if (panel) renderContext(panel, c.journey.ctx, c.nba); }

  function renderOfferPreview(o) {
    const j = new Journey(o.context || { customer: o.customer, timeline: [] });
    const tv = new TimelineView(j);
    const side = h('aside', { class: 'context', 'aria-label': 'Customer context' });
    renderContext(side, j.ctx, undefined);
    els.work.append(h('div', { class: 'convo' },
      h('header', { class: 'convo-head' }, h('h1', {}, o.customer), h('span', { class: 'pill offered' }, 'offer'), h('span', { class: 'muted' }, `queue ${o.queue} · expires ${fmtTime(o.expires)}`)),
      renderSummary(j.summary()), tv.el,
      h('div', { class: 'composer' }, h('div', { class: 'actions' },
        h('button', { class: 'btn ok', type: 'button', id: 'preview-accept', onclick: () => accept(o) }, 'Accept'),
        h('button', { class: 'btn', type: 'button', onclick: () => decline(o) }, 'Decline')))), side);
  }

  function composer(c) {
    const id = (s) => `${s}-${c.customer}`;
    const text = h('textarea', { id: 'reply-text', rows: '2', placeholder: 'Write a reply… (Ctrl+Enter sends)', maxlength: '4000' });
    const send = async () => {
      const t = text.value.trim();
      if (!t) return;
      text.value = '';
      const ref = newRef();
      c.tv.pending(ref, t);
      try {
        await sock.send({ type: 'reply', customer: c.customer, conversation: c.conversation, text: t, ref }, { resend: true });
      } catch (e) {
        c.tv.el.querySelector(`.pending[data-ref="${CSS.escape(ref)}"]`)?.remove();
        text.value = t;
        toast(`Reply not sent: ${e.message}`, true);
      }
    };
    text.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); send(); } });
    const tKind = h('select', { id: id('transfer-kind') }, h('option', { value: 'queue' }, 'queue'), h('option', { value: 'agent' }, 'agent'));
    const tTarget = h('input', { id: id('transfer-to'), placeholder: 'queue or agent', size: '12' });
    const disp = h('select', { id: 'wrapup-disposition' }, DISPOSITIONS.map((d) => h('option', { value: d }, d.replace('_', ' '))));
    const note = h('input', { id: 'wrapup-note', placeholder: 'what was done', maxlength: '2000', size: '18' });
    return h('form', { class: 'composer', 'aria-label': 'Reply and actions', onsubmit: (ev) => { ev.preventDefault(); send(); } },
      h('label', { for: 'reply-text' }, `Reply to ${c.customer} on ${c.journey.ctx.conversation?.channel || 'the conversation\'s channel'}`),
      h('div', { class: 'reply' }, text, h('button', { class: 'btn primary', type: 'submit', id: 'reply-send' }, 'Send')),
      h('div', { class: 'actions' },
        h('fieldset', { class: 'group' }, h('legend', { class: 'sr-only' }, 'Transfer'), 
          h('div', {}, h('label', { for: id('transfer-kind') }, 'Transfer to'), tKind),
          h('div', {}, h('label', { for: id('transfer-to') }, 'Name'), tTarget),
          h('button', { class: 'btn', type: 'button', onclick: () => transfer(c, tKind.value, tTarget.value.trim()) }, 'Transfer')),
        h('fieldset', { class: 'group' }, h('legend', { class: 'sr-only' }, 'Wrap-up'), 
          h('div', {}, h('label', { for: 'wrapup-disposition' }, 'Disposition'), disp),
          h('div', {}, h('label', { for: 'wrapup-note' }, 'Note'), note),
          h('button', { class: 'btn', type: 'button', id: 'wrapup', onclick: () => wrapup(c, disp.value, note.value.trim()) }, 'Wrap up'))));
  }

  async function transfer(c, kind, to) {
    if (!to) { toast('Name a queue or an agent to transfer to.', true); return; }
    try {
      await sock.send({ type: 'transfer', customer: c.customer, conversation: c.conversation, [kind]: to });
      drop(c.customer, `${c.customer} transferred to ${kind} ${to}.`);
    } catch (e) { toast(`Transfer: ${e.message}`, true); }
  }

  async function wrapup(c, disposition, note) {
    try {
      await sock.send({ type: 'wrapup', customer: c.customer, conversation: c.conversation, disposition, note });
      drop(c.customer, `${c.customer} wrapped up (${disposition}).`);
    } catch (e) { toast(`Wrap-up: ${e.message}`, true); }
  }

  // Frames from the server.

  function onFrame(ev) {
    const f = ev.detail;
    switch (f.type) {
      case 'presence':
        state.presence = { status: f.status, capacity: f.capacity, load: f.load };
        renderPresence();
        renderOffers();
        break;
      case 'offer': {
        const left = new Date(f.expires).getTime() - Date.now();
        state.offers.set(f.conversation, { ...f, total: left });
        if (!state.selected) state.selected = { kind: 'offer', key: f.conversation };
        renderOffers();
        if (state.selected?.key === f.conversation) renderWork();
        toast(`New offer: ${f.customer} from ${f.queue}`);
        break;
      }
      case 'assigned': {
        const wasOffer = state.selected?.kind === 'offer' && state.selected.key === f.conversation;
        state.offers.delete(f.conversation);
        const c = addConversation(f.customer, f.conversation, f.context || { customer: f.customer, timeline: [] });
        if (wasOffer || !state.selected) state.selected = { kind: 'conv', key: c.customer };
        renderOffers();
        renderTabs();
        renderWork();
        break;
      }
      case 'revoked': {
        const o = state.offers.get(f.conversation);
        if (o) { state.offers.delete(f.conversation); toast(`Offer for ${f.customer} taken back (${f.reason}).`); }
        const c = state.convs.get(f.customer);
        if (c && c.conversation === f.conversation) drop(f.customer, `${f.customer} is no longer yours (${f.reason}).`);
        if (state.selected?.key === f.conversation) state.selected = null;
        renderOffers();
        renderWork();
        break;
      }
      case 'event': {
        const c = state.convs.get(f.customer);
        if (!c) break;
        if (c.tv.push(f.event) === 'new') {
          if (!isSelected(c) && f.event.actor === 'customer') { c.unread++; renderTabs(); }
          if (CONTEXT_TYPES.test(f.event.type) || f.event.actor === 'customer') refreshContext(c);
        }
        break;
      }
      case 'error':
        if (f.code !== 'conflict') toast(`${f.code}: ${f.message}`, true);
        break;
      default:
    }
  }

  function onOnline() {
    if (state.wanted) sock.send({ type: 'presence', ...state.wanted }).catch(() => {});
    for (const c of state.convs.values()) subscribe(c);
  }

  function save() {
    sessionStorage.setItem(SAVED, JSON.stringify({
      presence: state.wanted,
      convs: [...state.convs.values()].map((c) => ({ customer: c.customer, conversation: c.conversation })),
    }));
  }

  // A reload keeps the tab's conversations: each is read again (it may
  // have been wrapped up or moved meanwhile: then it is dropped).
  async function restore() {
    for (const s of loadSaved().convs || []) {
      try {
        const ctx = await api.customer(s.customer);
        if (ctx.conversation && ctx.conversation.agent === me.agent && ctx.conversation.state === 'agent') addConversation(s.customer, ctx.conversation.id, ctx);
      } catch { /* not ours any more */ }
    }
    save();
    renderWork();
  }

  sock.addEventListener('frame', onFrame);
  sock.addEventListener('online', onOnline);
  renderPresence();
  renderOffers();
  renderTabs();
  renderWork();
  restore();
  if (sock.online) onOnline();

  return () => {
    clearInterval(ticker);
    sock.removeEventListener('frame', onFrame);
    sock.removeEventListener('online', onOnline);
  };
}

function loadSaved() {
  try { return JSON.parse(sessionStorage.getItem(SAVED) || '{}'); } catch { return {}; }
}
