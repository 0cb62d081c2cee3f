// Running a sync: push the outbox in batches, upload waiting photos with tus, pull the changes feed.
// An outbox entry is removed only when the server has answered for it (a per-op result of
// /api/sync/push, or a completed tus upload confirmed by GET /api/materials/{id}). A 401 stops the
// run and keeps everything. The outbox itself (making changes, what screens show) is outbox.js,
// re-exported here: the screens use one module.
import * as db from './db.js';
import { api } from './api.js';
import { upload as tusUpload } from './tus.js';
import { uuid } from './dom.js';
import { t } from './i18n.js';
import { emit, mine, state } from './outbox.js';

export * from './outbox.js';

// A push carries at most BATCH ops and MAX_BYTES of JSON: the server refuses bodies over its limit
// (413; 1 MB by default) and 200 pages of Chinese notes are more than that. A 413 halves the batch.
const BATCH = 200;
const MAX_BYTES = 512 * 1024;
// A push on a slow site link takes a while: 30 s, plus a second per 4 KB it carries (512 KB: ~2.5 min).
export const pushTimeout = (bytes) => 30000 + Math.ceil(bytes / 4096) * 1000;
const PAGE_TIMEOUT = 60000; // a page of the changes feed (up to 500 records)
const encoder = new TextEncoder();
const sizeOf = (value) => encoder.encode(JSON.stringify(value)).length;
const wire = ({ op_id, type, id, op, base_version, data }) => ({ op_id, type, id, op, base_version, data });

// ---- running a sync ----

let current = null;
let again = false;
// One run at a time (also across tabs, with Web Locks). A request during a run starts one more run
// after it, so a change made while syncing is not left waiting for the timer.
export function sync(reason = 'manual') {
  if (current) {
    again = true;
    return current.then(() => (again ? sync(reason) : undefined));
  }
  again = false;
  const run = async () => {
    state.running = true; state.error = null; await emit();
    try {
      await push();
      const stalled = await uploads();
      await pull();
      state.photosWaiting = stalled;
      if (!stalled) {
        state.lastSync = new Date().toISOString();
        await db.meta.set('lastSync', state.lastSync);
      }
      state.needSignIn = false;
    } catch (e) {
      if (e.status === 401) state.needSignIn = true;
      state.error = e.status === 0 ? 'offline' : (e.message || String(e));
      if (e.status !== 0 && e.status !== 401) console.warn('sync', reason, e);
    } finally {
      state.running = false; state.progress = null; current = null;
      await emit();
    }
  };
  current = navigator.locks ? navigator.locks.request('fieldbook-sync', run) : run();
  return current;
}

// The next batch: the one in flight again (same ops, same Idempotency-Key, so the server replays its
// answer if the first attempt got through), unless it had to be split; otherwise the oldest ops, one
// per record (the next one may chain on its result), within the count and byte limits. The first op
// always goes, so a batch is never empty.
function nextBatch(outbox, inflight, cap, budget) {
  if (inflight && !inflight.split) {
    const byOpId = new Map(outbox.map((o) => [o.op_id, o]));
    const again = inflight.ids.map((id) => byOpId.get(id));
    if (again.length && again.every(Boolean)) return again;
  }
  const ops = [];
  const ids = new Set();
  let bytes = 11; // {"ops":[]}
  for (const o of outbox) {
    if (ids.has(o.id)) continue;
    ids.add(o.id);
    const size = sizeOf(wire(o)) + 1;
    if (ops.length && (ops.length >= cap || bytes + size > budget)) break;
    ops.push(o);
    bytes += size;
  }
  return ops;
}

async function push() {
  let budget = (await db.meta.get('pushBytes')) || MAX_BYTES;
  let cap = BATCH;
  for (;;) {
    const outbox = (await db.all('outbox')).filter(mine);
    if (!outbox.length) {
      if (budget !== MAX_BYTES) await db.del('meta', 'pushBytes'); // the backlog is gone: full size next time
      return;
    }
    let inflight = await db.meta.get('inflight');
    const ops = nextBatch(outbox, inflight, cap, budget);
    for (const o of ops) {
      if (!o.chain) continue;
      const rec = await db.get('records', `${o.type === 'daily_summary' || o.type === 'material' ? o.type : 'observation'}:${o.id}`);
      o.base_version = rec && rec.data && rec.data.version ? rec.data.version : null;
      o.chain = false;
      await db.put('outbox', o);
    }
    // The same batch is retried with the same Idempotency-Key until an answer arrives; a smaller
    // batch made from it is another request, with a key of its own.
    const opIds = ops.map((o) => o.op_id);
    if (!inflight || inflight.ids.join() !== opIds.join()) {
      inflight = { key: uuid(), ids: opIds };
      await db.meta.set('inflight', inflight);
    }
    await db.write(['outbox'], (tx) => { for (const o of ops) if (!o.sent) tx.put('outbox', { ...o, sent: true }); });
    const body = { ops: ops.map(wire) };
    const bytes = sizeOf(body);
    const timeout = pushTimeout(bytes);
    const started = Date.now();
    let answer;
    try {
      answer = await api('/api/sync/push', { method: 'POST', body, headers: { 'Idempotency-Key': inflight.key }, timeout });
    } catch (e) {
      if (e.status === 413 && ops.length > 1) {
        // Refused unread (so not kept under its key): send the first half, as a new request.
        cap = Math.max(1, Math.floor(ops.length / 2));
        budget = Math.min(budget, Math.max(1024, Math.floor(bytes / 2)));
        await db.meta.set('pushBytes', budget);
        await db.del('meta', 'inflight');
        continue;
      }
      if (e.status === 413) {
        // One op too large on its own: it goes to "needs you" instead of blocking everything after it.
        await tooLarge(ops[0], e);
        continue;
      }
      if (e.status === 0 && Date.now() - started >= timeout - 1000) {
        // Timed out: the link is too slow for this much. Next time a smaller batch goes (a new key;
        // ops the server applied meanwhile answer "duplicate", by op_id).
        await db.meta.set('inflight', { ...inflight, split: true });
        if (ops.length > 1) await db.meta.set('pushBytes', Math.min(budget, Math.max(1024, Math.floor(bytes / 2))));
      }
      throw e;
    }
    cap = BATCH;
    const results = answer.results || [];
    const have = new Map();
    for (const op of ops) {
      const rec = await db.get('records', `${op.type}:${op.id}`);
      if (rec) have.set(op.id, rec.data);
    }
    await db.write(['outbox', 'issues', 'records', 'meta'], (tx) => {
      results.forEach((r, i) => {
        const op = ops[r.index ?? i];
        if (!op) return;
        if (r.status === 'applied' || r.status === 'duplicate') {
          if ((op.type === 'observation' || op.type === 'daily_summary' || op.type === 'material') && r.version) {
            // Keep the known version so later edits are made against it.
            tx.put('records', versioned(op, r, have.get(op.id)));
          }
        } else {
          tx.put('issues', { op_id: op.op_id, status: r.status, op, current: r.current, mine: r.mine, changes: r.changes, error: r.error, version: r.version, at: Date.now() });
        }
        tx.del('outbox', op.seq);
      });
      tx.del('meta', 'inflight');
    });
    await emit();
  }
}

async function tooLarge(op, e) {
  const text = (op.data && (op.data.text || op.data.summary || op.data.caption)) || '';
  const message = t('tooLargeToSync') + (text ? ` 「${text.slice(0, 30)}${text.length > 30 ? '…' : ''}」` : '');
  await db.write(['outbox', 'issues', 'meta'], (tx) => {
    tx.put('issues', { op_id: op.op_id, status: 'rejected', op, error: { status: 413, code: e.code || 'payload_too_large', message }, at: Date.now() });
    tx.del('outbox', op.seq);
    tx.del('meta', 'inflight');
  });
  await emit();
}

// A just-applied create or edit, kept as the local server copy until the changes feed brings the real one.
function versioned(op, r, prev = {}) {
  const data = op.op === 'delete' ? { ...prev, version: r.version, _deleted: true } : { ...prev, ...op.data, version: r.version, _own: r.version };
  if (op.type === 'daily_summary') {
    const [stint_id, author_id, day] = op.id.split(':');
    return { key: `daily_summary:${op.id}`, type: 'daily_summary', stint_id, data: { stint_id, author_id, day, ...data }, version: r.version };
  }
  if (op.type === 'material') return { key: `material:${op.id}`, type: 'material', stint_id: data.stint_id, data, version: r.version };
  if (!data.tags) data.tags = [];
  return { key: `observation:${op.id}`, type: 'observation', stint_id: data.stint_id, data, version: r.version };
}

// Sends the photos waiting on this device; returns how many are left because the link stalled (0: all sent).
async function uploads() {
  const waiting = (await db.all('uploads')).filter(mine);
  if (!waiting.length) return 0;
  const unsent = new Set((await db.all('outbox')).filter(mine).map((o) => o.id));
  for (const item of waiting) {
    if (item.observation_id && unsent.has(item.observation_id)) continue; // its observation first
    // Already there (an earlier attempt finished but its answer was lost)?
    try {
      await api(`/api/materials/${item.id}`);
      await db.del('uploads', item.id);
      await emit();
      continue;
    } catch (e) {
      if (e.status !== 404) throw e;
    }
    try {
      await tusUpload(item, {
        save: async (url) => { item.upload_url = url; await db.put('uploads', item); },
        progress: (sent, total) => { state.progress = { sent, total }; emit(); },
      });
    } catch (e) {
      // Timed out (the link stalls): the rest of this run (the pull) goes on; this photo and those
      // after it wait for the next run, which resumes from the server's offset.
      if (e.code === 'timeout') return (await db.all('uploads')).filter(mine).length;
      if (e.status === 0 || e.status === 401 || e.status >= 500 || e.status === 423 || e.status === 409) throw e;
      // The server refused the file (415 type, 413 size, 422 content): the user decides.
      await db.write(['uploads', 'issues'], (tx) => {
        tx.del('uploads', item.id);
        tx.put('issues', { op_id: 'upload:' + item.id, status: 'rejected', upload: { ...item, blob: undefined }, error: { status: e.status, code: e.code, message: e.message }, at: Date.now() });
      });
      await emit();
      continue;
    }
    await api(`/api/materials/${item.id}`); // confirmed before it leaves the outbox
    await db.del('uploads', item.id);
    await emit();
  }
  return 0;
}

// The changes feed from this device's cursor. A stint shared with this user later (or again, after
// a removal dropped its records) comes as a stint_access change only: its older records sit below
// the cursor. Such a stint is noted in meta "backfill" in the same write that moves the cursor past
// it, and pulled from the start on its own (?stint_id=, with its own cursor), so the main cursor
// never goes back and an interrupted backfill carries on in the next run.
async function pull() {
  let since = await db.meta.get('cursor');
  let backfill = since ? (await db.meta.get('backfill')) || {} : {}; // a pull from the start has them all
  let shared = false;
  // From the start, the first page is read as a member of every stint it shows: those need no
  // backfill. A stint granted while the later pages were read may have records below them.
  let seenFirst = since ? null : new Set();
  try {
    for (let guard = 0; guard < 1000; guard++) {
      let page;
      try {
        page = await api('/api/sync/changes' + (since ? `?since=${encodeURIComponent(since)}` : ''), { timeout: PAGE_TIMEOUT });
      } catch (e) {
        if (e.status === 410) {
          // Our cursor is older than the tombstones the server keeps: start over.
          await db.write(['records', 'meta'], (tx) => { tx.clear('records'); tx.del('meta', 'cursor'); tx.del('meta', 'backfill'); });
          since = null;
          backfill = {};
          seenFirst = new Set();
          continue;
        }
        throw e;
      }
      if (seenFirst && !since) for (const c of page.changes) seenFirst.add(c.stint_id);
      const dropped = new Set();
      for (const c of page.changes) {
        if (c.type !== 'stint_access') continue;
        shared = true;
        if (c.deleted) { dropped.add(c.stint_id); delete backfill[c.stint_id]; } else if (!(seenFirst && seenFirst.has(c.stint_id))) backfill[c.stint_id] = { since: null };
      }
      await db.write(['records', 'meta'], (tx) => {
        writeChanges(tx, page.changes);
        tx.put('meta', page.cursor, 'cursor');
        tx.put('meta', backfill, 'backfill');
      });
      for (const stintId of dropped) {
        const rows = await db.all('records', 'stint', stintId);
        await db.write(['records'], (tx) => { for (const r of rows) tx.del('records', r.key); });
      }
      since = page.cursor;
      if (!page.has_more) break;
    }
    for (const stintId of Object.keys(backfill)) await pullStint(stintId, backfill);
  } finally {
    if (shared) window.dispatchEvent(new CustomEvent('fieldbook:stints'));
  }
}

function writeChanges(tx, changes) {
  for (const c of changes) {
    if (c.type === 'stint_access') continue; // handled by the caller
    const key = `${c.type}:${c.id}`;
    // A deleted hypothesis is remembered, not just dropped: observations linked to it have not
    // changed (nothing of theirs comes in the feed), yet their links to it must stop showing.
    if (c.deleted && c.type === 'hypothesis') tx.put('records', { key, type: c.type, stint_id: c.stint_id, data: null, deleted: true, version: c.version });
    else if (c.deleted) tx.del('records', key);
    else tx.put('records', { key, type: c.type, stint_id: c.stint_id, data: c.data, version: c.version });
  }
}

// One stint's changes from the start, page by page; its place is kept in backfill[stintId].since.
async function pullStint(stintId, backfill) {
  for (let guard = 0; guard < 1000 && backfill[stintId]; guard++) {
    const { since } = backfill[stintId];
    let page;
    try {
      page = await api(`/api/sync/changes?stint_id=${encodeURIComponent(stintId)}` + (since ? `&since=${encodeURIComponent(since)}` : ''), { timeout: PAGE_TIMEOUT });
    } catch (e) {
      if (e.status === 404) { delete backfill[stintId]; await db.meta.set('backfill', backfill); return; } // no longer a member
      if (e.status === 410) { backfill[stintId] = { since: null }; continue; }
      throw e;
    }
    if (page.has_more) backfill[stintId] = { since: page.cursor };
    else delete backfill[stintId];
    await db.write(['records', 'meta'], (tx) => {
      writeChanges(tx, page.changes);
      tx.put('meta', backfill, 'backfill');
    });
  }
}
