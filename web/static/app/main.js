// The web app's entry: sign-in with a token, then the screens of the
// token's role (an agent: the desk; a supervisor or admin: the dashboard),
// chosen by the URL's hash. One agent WebSocket per tab carries the live
// frames of every screen.

import { h, clear, toast } from './dom.js';
import * as api from './api.js';
import { DeskSocket } from './socket.js';
import { mountDesk } from './desk.js';
import { mountLive, mountJourney, mountBroadcasts } from './supervisor.js';
import { mountAnalytics } from './analytics.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const conn = document.getElementById('conn');
const offline = document.getElementById('offline');

const SCREENS = {
  agent: [['desk', 'Desk']],
  supervisor: [['live', 'Queues & agents'], ['journey', 'Journeys'], ['broadcasts', 'Broadcasts'], ['analytics', 'Analytics']],
};

let me = null;
let sock = null;
let unmount = null;

function signIn(message) {
  if (sock) { sock.close(); sock = null; }
  me = null;
  document.getElementById('topbar').hidden = true;
  offline.hidden = true;
  const input = h('input', { id: 'token', type: 'password', autocomplete: 'current-password', required: true });
  const err = h('p', { class: 'error', role: 'alert', id: 'signin-error' }, message || '');
  const form = h('form', { class: 'signin', 'aria-labelledby': 'signin-h' },
    h('div', { class: 'brand' }, h('span', { class: 'logo', 'aria-hidden': 'true' }), 'Throughline'),
    h('h1', { id: 'signin-h' }, 'Sign in'),
    h('p', {}, 'Use the access token your administrator gave you. It is kept in this tab only.'),
    h('div', { class: 'field' }, h('label', { for: 'token' }, 'Access token'), input),
    err,
    h('button', { class: 'btn primary', type: 'submit', id: 'signin' }, 'Sign in'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const who = await api.whoami(input.value.trim());
      api.setToken(input.value.trim());
      start(who);
    } catch (e) {
      err.textContent = e.status === 401 ? 'This token is not known.' : e.message;
    }
  });
  if (unmount) { unmount(); unmount = null; }
  clear(main).append(form);
  input.focus();
}

function start(who) {
  me = who;
  const role = who.role === 'admin' ? 'supervisor' : who.role;
  if (!SCREENS[role]) {
    api.setToken('');
    signIn(`A ${who.role} token has no screens here: sign in as an agent or a supervisor.`);
    return;
  }
  me.screens = SCREENS[role];
  document.getElementById('topbar').hidden = false;
  document.getElementById('who').textContent = who.agent ? `${who.agent} · agent` : who.role;
  clear(nav).append(...me.screens.map(([id, label]) => h('a', { href: `#/${id}`, dataset: { screen: id } }, label)));
  sock = new DeskSocket(api.token());
  sock.addEventListener('online', () => setOnline(true));
  sock.addEventListener('offline', () => { setOnline(false); checkToken(); });
  setOnline(false, true);
  sock.connect();
  route();
}

// checkToken: a socket that cannot connect may be refused (the token was
// removed from the config): then sign in again, else keep reconnecting.
async function checkToken() {
  try { await api.whoami(api.token()); } catch (e) {
    if (e.status === 401 && me) { api.setToken(''); signIn('Your token is no longer valid: sign in again.'); }
  }
}

function setOnline(on, connecting = false) {
  conn.textContent = on ? 'Live' : (connecting ? 'Connecting…' : 'Offline');
  conn.className = `conn ${on ? 'online' : 'offline'}`;
  conn.id = 'conn';
  document.body.dataset.online = String(on);
  offline.hidden = on || connecting;
}

function route() {
  if (!me) return;
  const [screen, ...rest] = location.hash.replace(/^#\/?/, '').split('/');
  const ids = me.screens.map(([id]) => id);
  const target = ids.includes(screen) ? screen : ids[0];
  if (target !== screen) { history.replaceState(null, '', `#/${target}`); }
  for (const a of nav.querySelectorAll('a')) {
    if (a.dataset.screen === target) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  if (unmount) unmount();
  document.body.dataset.screen = target;
  document.title = `${me.screens.find(([id]) => id === target)[1]} · Throughline`;
  switch (target) {
    case 'desk': unmount = mountDesk(main, me, sock); break;
    case 'live': unmount = mountLive(main); break;
    case 'journey': unmount = mountJourney(main, sock, decodeURIComponent(rest.join('/') || '')); break;
    case 'broadcasts': unmount = mountBroadcasts(main); break;
    case 'analytics': unmount = mountAnalytics(main); break;
    default:
  }
}

window.addEventListener('hashchange', () => {
  // The journey screen writes its own hash; only a change of screen remounts.
  const screen = location.hash.replace(/^#\/?/, '').split('/')[0];
  if (document.body.dataset.screen === screen && screen === 'journey') return;
  route();
});

document.getElementById('signout').addEventListener('click', () => {
  api.setToken('');
  sessionStorage.clear();
  signIn('Signed out.');
});

(async () => {
  const tok = api.token();
  if (!tok) { signIn(); return; }
  try {
    start(await api.whoami(tok));
  } catch (e) {
    if (e.status === 401) { api.setToken(''); signIn('Your token is no longer valid.'); } else { signIn(e.message); toast(e.message, true); }
  }
})();
