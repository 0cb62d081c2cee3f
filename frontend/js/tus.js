// A minimal tus 1.0 client (core + creation), enough for the field: the upload URL is kept in
// IndexedDB with the photo, and a later attempt asks the server (HEAD) how many bytes it holds
// durably and continues from there. Each PATCH sends one chunk, so a dropped connection loses at
// most one chunk of work.
import { CSRF } from './api.js';

const TUS = { 'Tus-Resumable': '1.0.0' };
const CHUNK = 1024 * 1024;
const MIN_CHUNK = 64 * 1024;
// Every request has a time limit: on a site the Wi-Fi often stalls rather than drops, and a request
// that never ends would hold up the whole sync run. A PATCH gets 60 s plus 1 s per 8 KB it carries
// (1 MiB: ~3 min). Tests may set globalThis.__fieldbookTusTimeouts (ms) to make them tiny.
const limits = () => ({ request: 30000, patch: 60000, per8k: 1000, ...globalThis.__fieldbookTusTimeouts });
const patchLimit = (bytes, t = limits()) => t.patch + Math.ceil(bytes / 8192) * t.per8k;
// The chunk size per upload (by id), for this page's life. A timed-out PATCH halves it, so a very
// slow link still gets whole chunks through; a chunk sent in under half its time doubles it again.
const chunks = new Map();

function b64(text) {
  const bytes = new TextEncoder().encode(text);
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function metadata(fields) {
  return Object.entries(fields)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${k} ${b64(String(v))}`)
    .join(',');
}

export class TusError extends Error {
  constructor(status, message, code) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code || 'upload_failed';
  }
}

// status 0: no answer. code 'timeout': the time limit passed (the caller gives up for this sync run;
// the server's offset says what arrived), 'offline': the request failed.
async function call(url, init, timeout = limits().request) {
  const ctl = new AbortController();
  let late = false;
  const timer = setTimeout(() => { late = true; ctl.abort(); }, timeout);
  try {
    return await fetch(url, { credentials: 'same-origin', cache: 'no-store', ...init, signal: ctl.signal });
  } catch (e) {
    throw new TusError(0, late ? `no answer in ${timeout} ms` : String(e && e.message), late ? 'timeout' : 'offline');
  } finally {
    clearTimeout(timer);
  }
}

async function failure(res) {
  let body = null;
  try { body = await res.json(); } catch { body = null; }
  const err = (body && body.error) || {};
  if (res.status === 401) window.dispatchEvent(new CustomEvent('fieldbook:unauthorized'));
  return new TusError(res.status, err.message, err.code);
}

// item: {blob, upload_url?, id, stint_id, observation_id?, filename, caption?}
// save(url): persists the upload URL before any byte is sent; progress(sent, total).
export async function upload(item, { save, progress } = {}) {
  const total = item.blob.size;
  let url = item.upload_url;
  let offset = null;
  if (url) {
    const res = await call(url, { method: 'HEAD', headers: { ...TUS } });
    if (res.ok) offset = Number(res.headers.get('Upload-Offset'));
    else if (res.status === 404 || res.status === 410) url = null; // expired or unknown: start again
    else throw await failure(res);
  }
  if (!url) {
    const res = await call('/api/uploads', {
      method: 'POST',
      headers: {
        ...TUS, ...CSRF,
        'Upload-Length': String(total),
        'Upload-Metadata': metadata({
          stint_id: item.stint_id, filename: item.filename, id: item.id,
          observation_id: item.observation_id, caption: item.caption, filetype: item.blob.type,
        }),
      },
    });
    if (res.status !== 201) throw await failure(res);
    url = new URL(res.headers.get('Location'), location.href).pathname;
    offset = 0;
    if (save) await save(url);
  }
  while (offset < total) {
    const size = chunks.get(item.id) || CHUNK;
    const chunk = item.blob.slice(offset, Math.min(total, offset + size));
    const limit = patchLimit(chunk.size);
    const started = Date.now();
    let res;
    try {
      res = await call(url, {
        method: 'PATCH',
        headers: { ...TUS, ...CSRF, 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' },
        body: chunk,
      }, limit);
    } catch (e) {
      if (e.code === 'timeout') chunks.set(item.id, Math.max(MIN_CHUNK, size / 2));
      throw e;
    }
    if (res.status === 409) {
      // Our idea of the offset is stale: ask again.
      const head = await call(url, { method: 'HEAD', headers: { ...TUS } });
      if (!head.ok) throw await failure(head);
      offset = Number(head.headers.get('Upload-Offset'));
      continue;
    }
    if (res.status !== 204) throw await failure(res);
    if (Date.now() - started < limit / 2 && size < CHUNK) chunks.set(item.id, size * 2);
    offset = Number(res.headers.get('Upload-Offset'));
    if (progress) progress(offset, total);
  }
  chunks.delete(item.id);
  return url;
}
