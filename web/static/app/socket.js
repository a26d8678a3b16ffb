// The agent WebSocket of PROTOCOL section 4, kept open: it reconnects with
// backoff, tells its listeners when it is online or offline, and answers
// each frame sent with a ref as a promise (ok or error). A reply whose
// answer has not come when the connection drops is sent again with the
// same ref after the reconnect: the ref is its idempotency key, so the
// customer gets it once.

const BACKOFF_MS = [300, 700, 1500, 3000, 5000];
const PENDING_MAX = 500;

let refs = 0;
const newRef = () => `w-${Date.now().toString(36)}-${(++refs).toString(36)}`;

export class DeskSocket extends EventTarget {
  constructor(tok) {
    super();
    this.tok = tok;
    this.ws = null;
    this.online = false;
    this.closed = false;
    this.attempt = 0;
    this.pending = new Map(); // ref -> {frame, resolve, reject}
  }

  connect() {
    if (this.closed) return;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    // The token rides in a subprotocol, never in the URL (which logs and
    // proxies keep); the server picks throughline.v1 and does not echo it.
    const ws = new WebSocket(`${scheme}://${location.host}/v1/agents/ws`, ['throughline.v1', bearerProtocol(this.tok)]);
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.online = true;
      this.emit('online', {});
      for (const p of this.pending.values()) if (p.resend) ws.send(JSON.stringify(p.frame));
    };
    ws.onmessage = (m) => {
      let f;
      try { f = JSON.parse(m.data); } catch { return; }
      const p = f.ref && this.pending.get(f.ref);
      if (p && (f.type === 'ok' || f.type === 'error')) {
        this.pending.delete(f.ref);
        if (f.type === 'ok') p.resolve(f); else p.reject(Object.assign(new Error(f.message || f.code), { code: f.code }));
        return;
      }
      this.emit('frame', f);
    };
    ws.onclose = () => {
      const was = this.online;
      this.online = false;
      this.ws = null;
      for (const [ref, p] of this.pending) {
        if (!p.resend) { this.pending.delete(ref); p.reject(Object.assign(new Error('offline'), { code: 'offline' })); }
      }
      if (was || this.attempt === 0 || this.attempt % 5 === 4) this.emit('offline', {});
      if (this.closed) return;
      const wait = BACKOFF_MS[Math.min(this.attempt++, BACKOFF_MS.length - 1)];
      setTimeout(() => this.connect(), wait);
    };
  }

  // send a frame; resolves on ok, rejects on error. resend: keep it across
  // a reconnect (replies), else it fails when the connection drops.
  send(frame, { resend = false } = {}) {
    return new Promise((resolve, reject) => {
      if (this.pending.size >= PENDING_MAX) { reject(new Error('too many frames waiting for an answer')); return; }
      const f = { ...frame, ref: frame.ref || newRef() };
      if (!this.online && !resend) { reject(Object.assign(new Error('offline'), { code: 'offline' })); return; }
      this.pending.set(f.ref, { frame: f, resolve, reject, resend });
      if (this.online) this.ws.send(JSON.stringify(f));
    });
  }

  close() {
    this.closed = true;
    if (this.ws) this.ws.close();
  }

  emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }
}

export { newRef };

// bearerProtocol carries a token as a WebSocket subprotocol: its UTF-8
// bytes in unpadded base64url, which is all subprotocol-safe characters.
function bearerProtocol(tok) {
  let bin = '';
  for (const b of new TextEncoder().encode(tok)) bin += String.fromCharCode(b);
  return 'throughline.bearer.' + btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
