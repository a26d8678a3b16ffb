// Small DOM helpers shared by every screen: element building, formatting,
// channel icons and toasts. Text always goes in as text nodes, never HTML.

export function h(tag, attrs, ...children) {
  const el = tag.startsWith('svg:')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.setAttribute('class', v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k in el && !tag.startsWith('svg:') && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) { el.replaceChildren(); return el; }

export function fmtTime(t) {
  if (!t) return '';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return '';
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })
    : d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

export function fmtDuration(ms) {
  if (ms === undefined || ms === null || Number.isNaN(ms)) return '–';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const hr = Math.floor(m / 60);
  return `${hr}h ${String(m % 60).padStart(2, '0')}m`;
}

export function pct(x) {
  return typeof x === 'number' ? `${(x * 100).toFixed(x < 0.1 ? 1 : 0)}%` : '–';
}

// Icons: 24x24 stroke paths, drawn inline (no icon font, no request).
const paths = {
  email: 'M3 6h18v12H3z M3 6l9 7 9-7',
  sms: 'M4 5h16v11H9l-5 4z',
  chat: 'M4 5h16v11H9l-5 4z M8 10h8 M8 13h5',
  web: 'M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18z M3 12h18 M12 3c3 3 3 15 0 18 M12 3c-3 3-3 15 0 18',
  voice: 'M6 3h4l2 5-3 2a12 12 0 0 0 5 5l2-3 5 2v4a2 2 0 0 1-2 2A17 17 0 0 1 4 5a2 2 0 0 1 2-2z',
  whatsapp: 'M12 3a9 9 0 0 0-7.8 13.5L3 21l4.6-1.2A9 9 0 1 0 12 3z M9 8c0 4 3 7 7 7',
  mobile: 'M7 2h10v20H7z M11 18h2',
  facebook: 'M14 8h3V4h-3a4 4 0 0 0-4 4v3H7v4h3v7h4v-7h3l1-4h-4V8z',
  video: 'M3 7h12v10H3z M15 10l6-3v10l-6-3',
  bot: 'M5 8h14v11H5z M12 4v4 M9 13h.01 M15 13h.01 M9 16h6',
  route: 'M4 6h10l4 6-4 6H4 M8 12h6',
  agent: 'M12 12a4 4 0 1 0 0-8a4 4 0 0 0 0 8z M4 21c1-4 4-6 8-6s7 2 8 6',
  workflow: 'M4 4h6v6H4z M14 14h6v6h-6z M10 7h4v10',
  case: 'M4 7h16v12H4z M9 7V4h6v3',
  event: 'M12 3l2.6 5.6 6.1.7-4.5 4.2 1.2 6-5.4-3-5.4 3 1.2-6-4.5-4.2 6.1-.7z',
  proactive: 'M4 10v4h4l6 4V6L8 10z M18 9a4 4 0 0 1 0 6',
  system: 'M12 8v5 M12 16h.01 M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18z',
};

export function icon(name, label) {
  const d = paths[name] || paths.system;
  const svg = h('svg:svg', { viewBox: '0 0 24 24', fill: 'none', stroke: 'currentColor', 'stroke-width': '2',
    'stroke-linecap': 'round', 'stroke-linejoin': 'round', role: label ? 'img' : null, 'aria-hidden': label ? null : 'true' });
  if (label) svg.append(h('svg:title', {}, label));
  svg.append(h('svg:path', { d }));
  return svg;
}

export function channelIcon(channel) {
  return icon(paths[channel] ? channel : 'event', channel ? `channel ${channel}` : 'no channel');
}

export function toast(text, bad = false) {
  const box = document.getElementById('toasts');
  const t = h('div', { class: bad ? 'toast bad' : 'toast', role: bad ? 'alert' : 'status' }, text);
  box.append(t);
  setTimeout(() => t.remove(), 4000);
}
