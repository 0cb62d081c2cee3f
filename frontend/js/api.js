// fetch() for the JSON API: the session is the HttpOnly cookie (no token is ever visible to
// scripts); every write carries the CSRF header the server asks for on cookie-signed requests.
export const CSRF = { 'X-Fieldbook-CSRF': '1' };

export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || (status === 0 ? 'offline' : 'http_' + status);
    this.details = err.details;
  }
}

// status 0: no answer (offline, refused, timed out).
export async function api(path, { method = 'GET', body, headers = {}, raw = false, timeout = 20000 } = {}) {
  const init = { method, headers: { ...headers }, credentials: 'same-origin', cache: 'no-store' };
  if (method !== 'GET' && method !== 'HEAD') Object.assign(init.headers, CSRF);
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeout);
  init.signal = ctl.signal;
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, { error: { code: 'offline', message: String(e && e.message) } });
  } finally {
    clearTimeout(timer);
  }
  if (raw) return res;
  if (res.status === 204) return null;
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  if (!res.ok) {
    const e = new ApiError(res.status, data);
    if (res.status === 401) window.dispatchEvent(new CustomEvent('fieldbook:unauthorized'));
    throw e;
  }
  return data;
}
