// The HTTP API of PROTOCOL section 3, with the signed-in token. The token
// lives in sessionStorage (gone when the tab closes) and travels in the
// Authorization header; only the WebSocket, which a browser cannot give a
// header, carries it in the Sec-WebSocket-Protocol header (socket.js).

const KEY = 'throughline.token';

export function token() { return sessionStorage.getItem(KEY) || ''; }
export function setToken(t) { if (t) sessionStorage.setItem(KEY, t); else sessionStorage.removeItem(KEY); }

export class APIError extends Error {
  constructor(status, code, message) { super(message || code || `HTTP ${status}`); this.status = status; this.code = code; }
}

export async function api(path, { method = 'GET', body, tok = token(), signal } = {}) {
  const headers = { Authorization: `Bearer ${tok}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal, cache: 'no-store' });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new APIError(0, 'offline', 'The server cannot be reached.');
  }
  const text = await resp.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!resp.ok) {
    const err = json && json.error;
    throw new APIError(resp.status, err ? err.code : '', err ? err.message : `HTTP ${resp.status}`);
  }
  return json;
}

export const whoami = (tok) => api('/v1/whoami', { tok });
export const customer = (id) => api(`/v1/customers/${encodeURIComponent(id)}`);
export const timeline = (id, after, limit) => api(`/v1/customers/${encodeURIComponent(id)}/timeline?after=${after}&limit=${limit}`);
export const nextBestAction = (id) => api(`/v1/customers/${encodeURIComponent(id)}/next-best-action`);
export const findCustomer = (kind, value) => api(`/v1/customers?${encodeURIComponent(kind)}=${encodeURIComponent(value)}`);
