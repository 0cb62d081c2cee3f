// A minimal tus 1.0 client (core + creation), enough for the field: the upload URL is kept in
// IndexedDB with the photo, and a later attempt asks the server (HEAD) how many bytes it holds
// durably and continues from there. Each PATCH sends one chunk, so a dropped connection loses at
// most one chunk of work.
import { CSRF } from './api.js';

const TUS = { 'Tus-Resumable': '1.0.0' };
const CHUNK = 1024 * 1024;

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

async function call(url, init) {
  try {
    return await fetch(url, { credentials: 'same-origin', cache: 'no-store', ...init });
  } catch (e) {
    throw new TusError(0, String(e && e.message), 'offline');
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
    const chunk = item.blob.slice(offset, Math.min(total, offset + CHUNK));
    const res = await call(url, {
      method: 'PATCH',
      headers: { ...TUS, ...CSRF, 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' },
      body: chunk,
    });
    if (res.status === 409) {
      // Our idea of the offset is stale: ask again.
      const head = await call(url, { method: 'HEAD', headers: { ...TUS } });
      if (!head.ok) throw await failure(head);
      offset = Number(head.headers.get('Upload-Offset'));
      continue;
    }
    if (res.status !== 204) throw await failure(res);
    offset = Number(res.headers.get('Upload-Offset'));
    if (progress) progress(offset, total);
  }
  return url;
}
