// Charts as plain SVG: horizontal bars (with an optional second series)
// and a donut. Each chart has a title and a text description for screen
// readers; numbers are also shown as text.

import { h } from './dom.js';

export const COLORS = ['#3b5bdb', '#12b886', '#f59f00', '#e64980', '#7048e8', '#15aabf', '#868e96'];

let ids = 0;

function svg(width, height, title, desc) {
  const id = `chart-${++ids}`;
  return h('svg:svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-labelledby': `${id}-t ${id}-d`, preserveAspectRatio: 'xMinYMin meet' },
    h('svg:title', { id: `${id}-t` }, title), h('svg:desc', { id: `${id}-d` }, desc));
}

function text(x, y, s, attrs = {}) { return h('svg:text', { x, y, ...attrs }, s); }

// hbars: items [{label, value, value2}] as horizontal bars; value2 (when
// series2 is named) is drawn inside value's bar.
export function hbars(items, { title, series = 'count', series2, width = 560, labelWidth = 200 } = {}) {
  const row = 26;
  const height = Math.max(1, items.length) * row + 8;
  const max = Math.max(1, ...items.map((i) => i.value));
  const barW = width - labelWidth - 60;
  const desc = items.map((i) => `${i.label}: ${i.value}${series2 ? `, ${series2} ${i.value2}` : ''}`).join('; ') || 'no data';
  const s = svg(width, height, title, desc);
  items.forEach((it, n) => {
    const y = n * row + 4;
    const w = Math.max(1, (barW * it.value) / max);
    const label = it.label.length > 32 ? `${it.label.slice(0, 31)}…` : it.label;
    s.append(text(labelWidth - 8, y + 15, label, { 'text-anchor': 'end' }),
      h('svg:rect', { x: labelWidth, y, width: w, height: row - 8, rx: 3, fill: COLORS[0], 'data-value': it.value }, h('svg:title', {}, `${it.label}: ${it.value} ${series}`)));
    if (series2) {
      const w2 = Math.max(0, (barW * (it.value2 || 0)) / max);
      s.append(h('svg:rect', { x: labelWidth, y: y + 5, width: w2, height: row - 18, rx: 2, fill: COLORS[1] }, h('svg:title', {}, `${it.label}: ${it.value2} ${series2}`)));
    }
    s.append(text(labelWidth + w + 6, y + 15, series2 ? `${it.value} / ${it.value2 || 0}` : String(it.value)));
  });
  if (!items.length) s.append(text(8, 20, 'No data in this window.'));
  const legend = series2 ? h('div', { class: 'legend' }, h('span', {}, h('i', { class: 'c0' }), series), h('span', {}, h('i', { class: 'c1' }), series2)) : null;
  return h('figure', { class: 'chart' }, s, legend);
}

// donut: parts [{label, value}] as a ring with a legend.
export function donut(parts, { title, size = 180 } = {}) {
  const total = parts.reduce((a, p) => a + p.value, 0);
  const r = size / 2 - 14;
  const c = size / 2;
  const s = svg(size, size, title, parts.map((p) => `${p.label}: ${p.value}`).join('; '));
  const circ = 2 * Math.PI * r;
  let offset = 0;
  s.append(h('svg:circle', { cx: c, cy: c, r, fill: 'none', stroke: '#eef1f6', 'stroke-width': 22 }));
  parts.forEach((p, i) => {
    if (!total || !p.value) return;
    const len = (circ * p.value) / total;
    s.append(h('svg:circle', {
      cx: c, cy: c, r, fill: 'none', stroke: COLORS[i % COLORS.length], 'stroke-width': 22,
      'stroke-dasharray': `${len} ${circ - len}`, 'stroke-dashoffset': String(-offset), transform: `rotate(-90 ${c} ${c})`,
    }, h('svg:title', {}, `${p.label}: ${p.value}`)));
    offset += len;
  });
  s.append(text(c, c + 2, String(total), { 'text-anchor': 'middle', class: 'big', 'font-size': '26', 'font-weight': '700' }),
    text(c, c + 20, 'conversations', { 'text-anchor': 'middle' }));
  const legend = h('div', { class: 'legend' }, parts.map((p, i) => h('span', {}, legendSwatch(i), `${p.label} ${p.value}`)));
  return h('figure', { class: 'chart donut' }, s, legend);
}

function legendSwatch(i) {
  const sw = h('i', {});
  sw.style.background = COLORS[i % COLORS.length];
  return sw;
}
