// A small promise wrapper over IndexedDB. Stores:
//   outbox  – pending operations (key: seq, autoincrement: the order they were made in)
//   uploads – photos and files waiting for a tus upload (key: material id), with their Blob
//   records – server copies: observations, hypotheses (key: "type:id")
//   issues  – answers that need the user: conflicts and rejected operations (key: op_id)
//   meta    – key/value: user, stints, cursor, last sync, the in-flight batch
const DB_NAME = 'fieldbook';
const DB_VERSION = 1;
let opening = null;

function req(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

export function open() {
  if (!opening) {
    opening = new Promise((resolve, reject) => {
      const r = indexedDB.open(DB_NAME, DB_VERSION);
      r.onupgradeneeded = () => {
        const db = r.result;
        db.createObjectStore('outbox', { keyPath: 'seq', autoIncrement: true });
        db.createObjectStore('uploads', { keyPath: 'id' });
        const records = db.createObjectStore('records', { keyPath: 'key' });
        records.createIndex('stint', 'stint_id');
        db.createObjectStore('issues', { keyPath: 'op_id' });
        db.createObjectStore('meta');
      };
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
  }
  return opening;
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error('transaction aborted'));
  });
}

export async function all(store, index, key) {
  const db = await open();
  const s = db.transaction(store).objectStore(store);
  return req(index ? s.index(index).getAll(key) : s.getAll());
}

export async function get(store, key) {
  const db = await open();
  return req(db.transaction(store).objectStore(store).get(key));
}

export async function put(store, value, key) {
  const db = await open();
  const tx = db.transaction(store, 'readwrite');
  const r = key === undefined ? tx.objectStore(store).put(value) : tx.objectStore(store).put(value, key);
  const id = await req(r);
  await done(tx);
  return id;
}

export async function del(store, key) {
  const db = await open();
  const tx = db.transaction(store, 'readwrite');
  tx.objectStore(store).delete(key);
  await done(tx);
}

export async function count(store) {
  const db = await open();
  return req(db.transaction(store).objectStore(store).count());
}

// Several writes in one transaction: fn(tx) gets {put, del, clear}; all or nothing.
export async function write(stores, fn) {
  const db = await open();
  const tx = db.transaction(stores, 'readwrite');
  fn({
    put: (store, value, key) => (key === undefined ? tx.objectStore(store).put(value) : tx.objectStore(store).put(value, key)),
    del: (store, key) => tx.objectStore(store).delete(key),
    clear: (store) => tx.objectStore(store).clear(),
  });
  await done(tx);
}

export const meta = {
  get: (key) => get('meta', key),
  set: (key, value) => put('meta', value, key),
};
