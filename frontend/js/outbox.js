// The outbox: every change is written to IndexedDB first (instant, offline), and what the screens
// show is the server's copies overlaid with what is still waiting. Conflicts and rejected ops wait in
// "issues" until the user resolves them, so their words are never dropped silently. Sending is
// sync.js's work.
import * as db from './db.js';
import { uuid } from './dom.js';

const listeners = new Set();
let userId = null;
// Ops are tagged with the account that made them: another account signing in on this device never
// sends them under its own name.
export function setUser(id) { userId = id; }
export const mine = (o) => !o.user_id || o.user_id === userId;
// lastSync: the end of the last run that sent everything (a run whose photo upload timed out does not
// count: photosWaiting says how many photos it left on the phone).
export const state = { running: false, lastSync: null, error: null, needSignIn: false, pending: 0, issues: 0, progress: null, photosWaiting: 0 };

export function onChange(fn) { listeners.add(fn); return () => listeners.delete(fn); }
export async function emit() {
  const uploadCount = await db.count('uploads');
  state.pending = (await db.count('outbox')) + uploadCount;
  state.photosWaiting = Math.min(state.photosWaiting, uploadCount); // one discarded meanwhile no longer waits
  state.issues = await db.count('issues');
  for (const fn of listeners) { try { fn(state); } catch (e) { console.error(e); } }
}

export async function init() {
  state.lastSync = (await db.meta.get('lastSync')) || null;
  await emit();
}

// ---- making changes (all local, instant, offline) ----

export async function createObservation(stintId, data, files = []) {
  const id = data.id || uuid();
  const op = { op_id: uuid(), user_id: userId, type: 'observation', id, op: 'upsert', base_version: null, data: { ...data, id, stint_id: stintId }, created: Date.now() };
  await db.write(['outbox', 'uploads'], (tx) => {
    tx.put('outbox', op);
    for (const f of files) tx.put('uploads', { id: uuid(), user_id: userId, stint_id: stintId, observation_id: id, blob: f, filename: f.name || 'photo.jpg', caption: null, upload_url: null, created: Date.now() });
  });
  await emit();
  return id;
}

// Edit: base_version is the server version the edit was made against. An edit of a record whose
// create or previous edit has not been sent yet is folded into it. An edit made while an earlier
// change of the same record is on its way is chained: its base is the version that change produces,
// resolved when it is sent (a record has at most one op per push).
export function updateObservation(shown, changes) {
  return queueEdit('observation', shown, changes);
}

// The outbox ops of a record: an observation's include its stance links (same id).
async function pendingOps(type, id) {
  return (await db.all('outbox')).filter((o) => o.id === id && (type === 'observation' || o.type === type));
}

async function queueEdit(type, shown, changes) {
  const record = await latest(shown, type);
  const ops = await pendingOps(type, record.id);
  const unsent = foldable(ops.find((o) => o.op === 'upsert' && !o.sent));
  if (unsent) {
    unsent.data = { ...unsent.data, ...changes };
    unsent.op_id = uuid();
    await db.put('outbox', unsent);
  } else {
    await db.put('outbox', { op_id: uuid(), user_id: userId, type, id: record.id, op: 'upsert', ...base(record, ops), data: changes, created: Date.now() });
  }
  await emit();
}

// The screen may show an older copy than the one synced since: edits are made against the newest.
async function latest(shown, type = 'observation') {
  const rec = await db.get('records', `${type}:${shown.id}`);
  // Only a version this device produced itself: a newer one from someone else must stay a conflict.
  const own = rec && rec.data && rec.data._own === rec.data.version;
  return own && rec.data.version > (shown.version || 0) ? { ...shown, version: rec.data.version } : shown;
}

// An op may be changed in place only while no push can be reading it (a run marks what it sends
// as sent; changing an op between its read and that mark would lose the change).
function foldable(op) {
  return op && !state.running ? op : undefined;
}

function base(record, ops) {
  return ops.length ? { base_version: null, chain: true } : { base_version: record.version || 1 };
}

export async function deleteObservation(shown) {
  const record = await latest(shown);
  const ops = await pendingOps('observation', record.id);
  const create = foldable(ops.find((o) => o.base_version === null && !o.chain && o.op === 'upsert' && !o.sent));
  if (create) {
    // Never reached the server: forget it here, with its photos.
    const uploads = (await db.all('uploads')).filter((u) => u.observation_id === record.id);
    await db.write(['outbox', 'uploads'], (tx) => {
      for (const o of ops) tx.del('outbox', o.seq);
      for (const u of uploads) tx.del('uploads', u.id);
    });
    await emit();
  } else {
    await queueDelete('observation', record, ops);
  }
}

// Edits nobody has seen yet are dropped: the delete wins.
async function queueDelete(type, record, ops) {
  const unsent = state.running ? [] : ops.filter((o) => !o.sent);
  const sent = ops.filter((o) => !unsent.includes(o));
  await db.write(['outbox'], (tx) => {
    for (const o of unsent) tx.del('outbox', o.seq);
    tx.put('outbox', { op_id: uuid(), user_id: userId, type, id: record.id, op: 'delete', ...base(record, sent), data: null, created: Date.now() });
  });
  await emit();
}

// A material's metadata (caption) or its deletion, against the version shown: the bytes never
// change. An unsent caption edit is folded into the next; a delete drops unsent edits.
export function updateMaterial(shown, changes) {
  return queueEdit('material', shown, changes);
}

export async function deleteMaterial(shown) {
  const material = await latest(shown, 'material');
  await queueDelete('material', material, await pendingOps('material', material.id));
}

// Materials as the server lists them, with this device's unsent caption edits and deletes applied.
export async function withMaterialEdits(materials) {
  const ops = (await db.all('outbox')).filter((o) => o.type === 'material');
  const gone = new Set(ops.filter((o) => o.op === 'delete').map((o) => o.id));
  const edits = new Map(ops.filter((o) => o.op === 'upsert').map((o) => [o.id, o.data]));
  return materials.filter((m) => !gone.has(m.id)).map((m) => (edits.has(m.id) ? { ...m, ...edits.get(m.id) } : m));
}

// A photo still waiting on this device (never uploaded): forgotten here.
export async function discardUpload(uploadId) {
  await db.del('uploads', uploadId);
  await emit();
}

// The day's summary (one per author and day): id {stint_id}:{author_id}:{YYYY-MM-DD}.
export async function saveSummary(stintId, day, summary) {
  const id = `${stintId}:${userId}:${day}`;
  const ops = (await db.all('outbox')).filter((o) => o.id === id);
  const unsent = foldable(ops.find((o) => !o.sent));
  if (unsent) {
    unsent.data = { summary };
    unsent.op_id = uuid();
    await db.put('outbox', unsent);
  } else {
    const rec = await db.get('records', `daily_summary:${id}`);
    const known = rec && rec.data ? { version: rec.data.version } : { version: 0 };
    const b = ops.length ? { base_version: null, chain: true } : { base_version: known.version || null };
    await db.put('outbox', { op_id: uuid(), user_id: userId, type: 'daily_summary', id, op: 'upsert', ...b, data: { summary }, created: Date.now() });
  }
  await emit();
}

export async function summaries(stintId) {
  const out = new Map();
  for (const r of await db.all('records', 'stint', stintId)) if (r.type === 'daily_summary' && r.data) out.set(r.key.slice('daily_summary:'.length), { ...r.data });
  for (const op of await db.all('outbox')) {
    if (op.type !== 'daily_summary' || !op.id.startsWith(stintId + ':')) continue;
    const [, author_id, day] = op.id.split(':');
    out.set(op.id, { ...(out.get(op.id) || { author_id, day, stint_id: stintId }), ...op.data, _pending: true });
  }
  return [...out.values()];
}

export async function addFiles(stintId, observationId, files) {
  await db.write(['uploads'], (tx) => {
    for (const f of files) tx.put('uploads', { id: uuid(), user_id: userId, stint_id: stintId, observation_id: observationId, blob: f, filename: f.name || 'photo.jpg', caption: null, upload_url: null, created: Date.now() });
  });
  await emit();
}

// ---- the view of records: server copies overlaid with what is still in the outbox ----

// Ids of the stint's hypotheses the changes feed said were deleted.
const deletedIn = (rows) => new Set(rows.filter((r) => r.type === 'hypothesis' && r.deleted).map((r) => r.key.slice('hypothesis:'.length)));
export async function deletedHypotheses(stintId) {
  return deletedIn(await db.all('records', 'stint', stintId));
}

export async function observations(stintId) {
  const rows = await db.all('records', 'stint', stintId);
  const gone = deletedIn(rows);
  const server = rows.filter((r) => r.type === 'observation').map((r) => ({ ...r.data }));
  const byId = new Map(server.map((o) => [o.id, o]));
  for (const op of await db.all('outbox')) {
    if (op.type !== 'observation') continue;
    const cur = byId.get(op.id);
    if (op.op === 'delete') { if (cur) cur._deleted = true; continue; }
    if (!cur) {
      if (op.data && op.data.stint_id === stintId) byId.set(op.id, { ...op.data, version: 0, tags: op.data.tags || [], _pending: true });
    } else {
      Object.assign(cur, op.data, { _pending: true });
    }
  }
  // Links to a deleted hypothesis are not shown (as the server no longer shows them).
  const live = (o) => (gone.size && o.hypothesis_links ? { ...o, hypothesis_links: o.hypothesis_links.filter((l) => !gone.has(l.hypothesis_id)) } : o);
  return [...byId.values()].filter((o) => !o._deleted).map(live);
}

export async function pendingUploads(observationId) {
  return (await db.all('uploads')).filter((u) => !observationId || u.observation_id === observationId);
}

// ---- resolving what the server pushed back ----

export async function issues() { return db.all('issues'); }

// Keep mine: push my version again, against the server's current version.
export async function keepMine(issue) {
  const op = issue.op;
  const data = op.op === 'delete' ? null : { ...(op.base_version === null ? op.data : issue.mine || op.data) };
  if (data) delete data.id; // stint_id stays: a create retried needs it (an edit may repeat it)
  await db.write(['outbox', 'issues'], (tx) => {
    tx.put('outbox', { op_id: uuid(), user_id: userId, type: op.type, id: op.id, op: op.op, base_version: issue.version ?? (issue.current && issue.current.version) ?? null, data, created: Date.now() });
    tx.del('issues', issue.op_id);
  });
  await emit();
}

export async function dismiss(issue) {
  await db.del('issues', issue.op_id);
  await emit();
}
