// Journey analytics (PROTOCOL section 10): GET /v1/analytics/journeys
// rendered as figures and SVG charts. A node without the endpoint (404)
// says so instead of drawing anything.

import { h, clear, fmtDuration, pct } from './dom.js';
import * as api from './api.js';
import { hbars, donut } from './charts.js';

const RANGES = [['24h', 24], ['7 days', 24 * 7], ['30 days', 24 * 30]];

export function mountAnalytics(main) {
  const range = h('select', { id: 'range' }, RANGES.map(([label, hours]) => h('option', { value: String(hours) }, `Last ${label}`)));
  const out = h('div', { id: 'analytics-out', class: 'page-body' });
  const reload = h('button', { class: 'btn', type: 'button', onclick: () => load() }, 'Refresh');
  range.addEventListener('change', () => load());
  clear(main).append(h('div', { class: 'page' },
    h('div', { class: 'row' }, h('h1', {}, 'Journey analytics'),
      h('div', {}, h('label', { for: 'range' }, 'Window'), range), reload), out));

  let ctl = null;
  async function load() {
    if (ctl) ctl.abort();
    ctl = new AbortController();
    const until = new Date();
    const since = new Date(until.getTime() - Number(range.value) * 3600e3);
    clear(out).append(h('p', { class: 'muted' }, 'Loading…'));
    try {
      const a = await api.api(`/v1/analytics/journeys?since=${encodeURIComponent(since.toISOString())}&until=${encodeURIComponent(until.toISOString())}`, { signal: ctl.signal });
      render(out, a);
    } catch (e) {
      if (e.name === 'AbortError') return;
      clear(out).append(h('div', { class: 'notice', role: 'alert', id: 'analytics-missing' }, e.status === 404
        ? 'Journey analytics is not available on this node: GET /v1/analytics/journeys answered 404. It comes with a Throughline version that has the analytics projection (PROTOCOL section 10).'
        : `Analytics could not be read: ${e.message}`));
    }
  }
  load();
  return () => { if (ctl) ctl.abort(); };
}

function kpi(label, value, id) {
  return h('div', { class: 'card kpi', id }, h('div', { class: 'value' }, value), h('div', { class: 'label' }, label));
}

function render(out, a) {
  const o = a.outcomes || {};
  const ttr = a.time_to_resolution_ms || {};
  const esc = Object.entries(a.escalations || {}).map(([label, value]) => ({ label: label.replace(/_/g, ' '), value })).sort((x, y) => y.value - x.value);
  const paths = (a.paths || []).map((p) => ({ label: (p.steps || []).join(' → '), value: p.conversations || 0, value2: p.resolved || 0 }));
  const drops = (a.drop_offs || []).map((d) => ({ label: d.after, value: d.conversations || 0 }));
  const offers = (a.offers || []).map((x) => ({ label: x.offer, value: x.sent || 0, value2: x.accepted || 0 }));
  clear(out).append(
    h('div', { class: 'grid4' },
      kpi('Conversations', String(a.conversations ?? 0), 'kpi-conversations'),
      kpi('Contained by the bot', pct(a.containment_rate), 'kpi-containment'),
      kpi('First-contact resolution', pct(a.fcr_rate), 'kpi-fcr'),
      kpi('Repeat contact in 7 days', pct(a.repeat_contact_7d_rate), 'kpi-repeat')),
    h('div', { class: 'grid2' },
      h('section', { class: 'card', 'aria-labelledby': 'outcomes-h' }, h('h2', { id: 'outcomes-h' }, 'Outcomes'),
        donut([{ label: 'contained', value: o.contained || 0 }, { label: 'resolved by agent', value: o.resolved_by_agent || 0 },
          { label: 'abandoned', value: o.abandoned || 0 }, { label: 'open', value: o.open || 0 }], { title: 'Outcomes of conversations' }),
        h('p', { class: 'muted' }, `Time to resolution: p50 ${fmtDuration(ttr.p50)}, p90 ${fmtDuration(ttr.p90)}`)),
      h('section', { class: 'card', 'aria-labelledby': 'esc-h' }, h('h2', { id: 'esc-h' }, 'Escalations by reason'),
        hbars(esc, { title: 'Escalations to a person by reason', series: 'escalations', labelWidth: 150 }))),
    h('section', { class: 'card', 'aria-labelledby': 'paths-h' }, h('h2', { id: 'paths-h' }, 'Most frequent paths'),
      hbars(paths, { title: 'Most frequent channel and handler paths', series: 'conversations', series2: 'resolved', width: 900, labelWidth: 340 })),
    h('div', { class: 'grid2' },
      h('section', { class: 'card', 'aria-labelledby': 'drop-h' }, h('h2', { id: 'drop-h' }, 'Where customers drop off'),
        hbars(drops, { title: 'Last step of abandoned journeys', series: 'abandoned', labelWidth: 150 })),
      h('section', { class: 'card', 'aria-labelledby': 'offers-h2' }, h('h2', { id: 'offers-h2' }, 'Offers'),
        hbars(offers, { title: 'Offers sent and accepted', series: 'sent', series2: 'accepted', labelWidth: 150 }))),
    h('section', { class: 'card', 'aria-labelledby': 'stuck-h' }, h('h2', { id: 'stuck-h' }, 'Stuck now'),
      (a.stuck || []).length ? h('table', {}, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'State'), h('th', { scope: 'col' }, 'Queue'),
        h('th', { scope: 'col', class: 'num' }, 'Conversations'), h('th', { scope: 'col', class: 'num' }, 'Longest'))),
      h('tbody', {}, a.stuck.map((s) => h('tr', {}, h('td', {}, s.state), h('td', {}, s.queue || '–'), h('td', { class: 'num' }, String(s.conversations)), h('td', { class: 'num' }, fmtDuration(s.longest_ms))))))
        : h('p', { class: 'muted' }, 'Nothing is stuck.')),
  );
}
