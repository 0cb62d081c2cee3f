// Fieldbook PWA: the entry point. Plain ES modules, DOM built with h() (never innerHTML); each screen
// is a module of its own (capture.js, timeline.js, search.js, debrief.js, actions.js, account.js,
// stints.js), the router picks one (router.js), shared state and chrome are in shell.js.
import { clear } from './dom.js';
import { t } from './i18n.js';
import { api } from './api.js';
import * as db from './db.js';
import * as sync from './sync.js';
import { signInView } from './account.js';
import { route } from './router.js';
import { app, dropDeletedHypotheses, loadStintDetails, loadStints, loadUser, refreshMaterials, renderChrome, renderSyncBadge, view } from './shell.js';

// Refresh lists after a sync without losing what is being typed.
let lastPending = -1;
let wasRunning = false;
sync.onChange(async (s) => {
  renderSyncBadge(s);
  const finished = wasRunning && !s.running;
  wasRunning = s.running;
  if (!s.running && app.user) {
    const r = view.dataset.route;
    if (finished) await dropDeletedHypotheses();
    if (finished && (r === 'me' || r === 'obs' || r === 'timeline')) route(true);
    else if (s.pending !== lastPending) {
      lastPending = s.pending;
      if (r === 'timeline' || r === 'me') route(true);
      else if (view.firstChild && view.firstChild.refresh) {
        // The screen may change while the materials load (a tap, a hash change): refresh the one
        // that asked, and only while it is still shown.
        const screen = view.firstChild;
        await refreshMaterials();
        if (view.firstChild === screen) screen.refresh();
      }
    }
  }
});

window.addEventListener('hashchange', () => route());
view.addEventListener('input', () => { view.dataset.dirty = '1'; });
window.addEventListener('fieldbook:unauthorized', () => { if (app.user) { sync.state.needSignIn = true; renderSyncBadge(sync.state); } });
window.addEventListener('fieldbook:stints', async () => { await loadStints(); renderChrome(); route(true); });
window.addEventListener('online', () => { app.online = true; renderChrome(); sync.sync('online'); });
window.addEventListener('offline', () => { app.online = false; renderChrome(); });
document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible' && app.online) sync.sync('visible'); });
setInterval(() => { if (app.online && app.user && !sync.state.needSignIn) sync.sync('timer'); }, 60_000);

document.getElementById('stint-button').addEventListener('click', () => { location.hash = '#/stints'; });
document.getElementById('sync-badge').addEventListener('click', () => { location.hash = '#/me'; });
document.querySelector('#signin-banner button').addEventListener('click', () => {
  // Keep the user and the outbox: only the session is renewed.
  clear(view).append(signInView(t('signInAgain')));
  view.dataset.route = 'signin';
});

let asked = false;
function registerWorker() {
  if (!('serviceWorker' in navigator)) return;
  navigator.serviceWorker.register('/sw.js').then((reg) => {
    const offer = (worker) => {
      const bar = document.getElementById('update-banner');
      bar.querySelector('span').textContent = t('updateReady');
      const btn = bar.querySelector('button');
      btn.textContent = t('reload');
      btn.onclick = () => { asked = true; worker.postMessage({ type: 'SKIP_WAITING' }); };
      bar.hidden = false;
    };
    if (reg.waiting && navigator.serviceWorker.controller) offer(reg.waiting);
    reg.addEventListener('updatefound', () => {
      const worker = reg.installing;
      worker.addEventListener('statechange', () => {
        if (worker.state === 'installed' && navigator.serviceWorker.controller) offer(worker);
      });
    });
    setInterval(() => reg.update().catch(() => {}), 30 * 60_000);
  }).catch((e) => console.warn('service worker', e));
  // Reload when the user asked for the new version (not on the first install, nor when another tab
  // took the update: this page keeps the code it was loaded with).
  let reloading = false;
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    if (reloading || !asked) return;
    reloading = true;
    location.reload();
  });
}

async function boot() {
  registerWorker();
  await sync.init();
  // First paint from what this device knows (instant, and the same offline); the network refreshes it.
  const cached = await db.meta.get('user');
  if (cached) {
    app.user = cached;
    sync.setUser(cached.id);
    app.stints = (await db.meta.get('stints')) || [];
    const chosen = await db.meta.get('stintId');
    app.stint = app.stints.find((x) => x.id === chosen) || app.stints[0] || null;
    if (app.stint) {
      app.hypotheses = (await db.meta.get('hyp:' + app.stint.id)) || [];
      app.materials = (await db.meta.get('mat:' + app.stint.id)) || [];
    }
    renderChrome();
    await route();
  }
  const before = app.user && app.user.id;
  const stintBefore = app.stint && app.stint.id;
  const [, stints] = await Promise.all([loadUser(), app.online ? api('/api/stints').catch(() => null) : null]);
  if (app.user && stints) {
    app.stints = stints;
    await db.meta.set('stints', stints);
    const chosen = (app.stint && app.stint.id) || (await db.meta.get('stintId'));
    app.stint = app.stints.find((x) => x.id === chosen) || app.stints[0] || null;
  }
  renderChrome();
  const changed = !cached || (app.user && app.user.id) !== before || (app.stint && app.stint.id) !== stintBefore;
  const details = app.user ? loadStintDetails() : null; // hypotheses and photos: the screen first
  if (changed) await route();
  if (details) {
    await details;
    await route(true);
  }
  if (app.user && app.online) sync.sync('boot');
}

boot();
