// Fieldbook service worker: the app shell is cached so the app opens with no network. API calls are
// never queued here (a background-sync queue drops requests on any HTTP answer): the app's own
// IndexedDB outbox does that. Updates: a new worker waits until the page asks it to take over
// (the "new version" banner), so an open page is never switched to code it was not loaded with.
const VERSION = 'fieldbook-shell-539ff6424506';
const SHELL = [
  '/',
  '/index.html',
  '/style.css',
  '/manifest.webmanifest',
  '/js/app.js',
  '/js/account.js',
  '/js/actions.js',
  '/js/api.js',
  '/js/capture.js',
  '/js/db.js',
  '/js/debrief.js',
  '/js/dom.js',
  '/js/fold.js',
  '/js/i18n.js',
  '/js/outbox.js',
  '/js/router.js',
  '/js/search.js',
  '/js/shell.js',
  '/js/stints.js',
  '/js/sync.js',
  '/js/timeline.js',
  '/js/tus.js',
  '/icons/icon.svg',
  '/icons/icon-192.png',
  '/icons/icon-512.png',
];
const PREVIEWS = 'fieldbook-previews-v1';
const MAX_PREVIEWS = 400;

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(VERSION).then((cache) => cache.addAll(SHELL.map((u) => new Request(u, { cache: 'reload' })))));
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key !== VERSION && key !== PREVIEWS) await caches.delete(key);
    await self.clients.claim();
  })());
});

self.addEventListener('message', (event) => {
  if (event.data && event.data.type === 'SKIP_WAITING') self.skipWaiting();
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (/^\/api\/materials\/[^/]+\/preview$/.test(url.pathname)) {
    // Photo previews: from the cache when we have them, so the log shows them offline.
    event.respondWith(caches.open(PREVIEWS).then(async (cache) => {
      const hit = await cache.match(req);
      if (hit) return hit;
      const res = await fetch(req);
      if (res.ok) {
        await cache.put(req, res.clone());
        const keys = await cache.keys();
        for (const old of keys.slice(0, Math.max(0, keys.length - MAX_PREVIEWS))) await cache.delete(old); // oldest first
      }
      return res;
    }));
    return;
  }
  if (url.pathname.startsWith('/api/') || url.pathname.startsWith('/s/') || url.pathname === '/openapi.json' || url.pathname.startsWith('/docs')) return;
  if (req.mode === 'navigate') {
    // The network when it answers (fresh index.html), the cached shell when it does not.
    event.respondWith(fetch(req).catch(async () => (await caches.match('/index.html', { cacheName: VERSION })) || Response.error()));
    return;
  }
  event.respondWith(caches.match(req, { cacheName: VERSION }).then((hit) => hit || fetch(req)));
});
