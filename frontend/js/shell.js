// The PWA's shared state, its chrome (title, navigation, sync badge), small form helpers, and
// loading the signed-in user's stints from the server or this device's copy.
import { h, localIso, uuid } from './dom.js';
import { t, fmtTime } from './i18n.js';
import { api } from './api.js';
import * as db from './db.js';
import * as sync from './sync.js';

export const KINDS = ['note', 'quote', 'behaviour', 'process', 'pain_point', 'idea', 'question'];

export const app = { user: null, stints: [], stint: null, hypotheses: [], materials: [], online: navigator.onLine };
export const view = document.getElementById('view');

export function toast(text) {
  const el = document.getElementById('toast');
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 2500);
}

export function renderChrome() {
  document.title = t('app');
  document.getElementById('app-title').textContent = t('app');
  const stintBtn = document.getElementById('stint-button');
  stintBtn.textContent = app.stint ? app.stint.title : t('chooseStint');
  stintBtn.setAttribute('aria-label', `${t('stint')}: ${stintBtn.textContent}`);
  for (const a of document.querySelectorAll('#nav a')) {
    const key = a.dataset.nav;
    a.querySelector('span').textContent = t('nav_' + key);
    const on = location.hash.startsWith('#/' + key) || (key === 'capture' && (location.hash === '' || location.hash === '#/'));
    a.classList.toggle('active', on);
    if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  renderSyncBadge(sync.state);
  document.getElementById('nav').hidden = !app.user;
  document.getElementById('stint-button').hidden = !app.user;
  document.getElementById('sync-badge').hidden = !app.user;
}

export function renderSyncBadge(s) {
  const badge = document.getElementById('sync-badge');
  const label = s.running ? t('syncing') : s.pending ? t('pendingN', s.pending) : t('allSynced');
  const photos = !s.running && s.photosWaiting ? ` · ${t('photosWaitingN', s.photosWaiting)}` : '';
  badge.textContent = (app.online ? '' : `${t('offline')} · `) + label + photos + (s.issues ? ` · ${t('issues')} ${s.issues}` : '');
  badge.dataset.pending = String(s.pending);
  badge.dataset.photosWaiting = String(s.photosWaiting || 0);
  badge.dataset.lastSync = s.lastSync || '';
  badge.classList.toggle('warn', !!(s.pending || s.issues || !app.online));
  badge.setAttribute('aria-label', `${t('sync')}: ${badge.textContent}. ${t('lastSync')}: ${fmtTime(s.lastSync)}`);
  const banner = document.getElementById('signin-banner');
  banner.hidden = !(s.needSignIn && app.user);
  banner.querySelector('span').textContent = t('signInAgain');
  banner.querySelector('button').textContent = t('signIn');
}

export function field(label, control, hint) {
  const id = control.id || (control.id = 'f-' + uuid().slice(0, 8));
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hint ? h('small', {}, hint) : null);
}

export function select(name, options, value, labelOf) {
  return h('select', { name }, options.map((o) => h('option', { value: o, selected: o === value }, labelOf(o))));
}

export function button(text, onclick, cls = '') {
  return h('button', { type: 'button', class: cls, onclick }, text);
}

export function stintToday() {
  const tz = (app.stint && app.stint.timezone) || undefined;
  try { return new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date()); } catch { return localIso().slice(0, 10); }
}

export function dayOf(o) {
  if (o.day) return o.day;
  const tz = (app.stint && app.stint.timezone) || undefined;
  try { return new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(o.observed_at)); } catch { return String(o.observed_at).slice(0, 10); }
}

export function needStint() {
  if (app.stint) return false;
  location.hash = '#/stints';
  return true;
}

export function canWrite() {
  return app.stint && (app.stint.my_role === 'researcher' || app.stint.my_role === 'manager');
}

// Newest first by the instant: observed_at carries each phone's own UTC offset, so its text does
// not sort in time order (10:00+08:00 is before 09:00Z).
const observedMs = (o) => Date.parse(o.observed_at) || 0;
export const newestFirst = (a, b) => observedMs(b) - observedMs(a);

export async function loadUser() {
  app.user = (await db.meta.get('user')) || null;
  if (app.user) sync.setUser(app.user.id);
  try {
    app.user = await api('/api/me');
    await db.meta.set('user', app.user);
    sync.setUser(app.user.id);
  } catch (e) {
    if (e.status === 401) {
      // Pending work stays; the user only has to sign in again.
      if (app.user && ((await db.count('outbox')) || (await db.count('uploads')))) sync.state.needSignIn = true;
      else app.user = null;
    }
  }
}

export async function loadStints() {
  app.stints = (await db.meta.get('stints')) || [];
  try {
    app.stints = await api('/api/stints');
    await db.meta.set('stints', app.stints);
  } catch { /* offline: the cached list */ }
  const chosen = (app.stint && app.stint.id) || (await db.meta.get('stintId'));
  app.stint = app.stints.find((s) => s.id === chosen) || app.stints[0] || null;
  await loadStintDetails();
}

export async function loadStintDetails() {
  if (!app.stint) return;
  const id = app.stint.id;
  app.hypotheses = (await db.meta.get('hyp:' + id)) || [];
  app.materials = (await db.meta.get('mat:' + id)) || [];
  await dropDeletedHypotheses();
  if (!app.online) return;
  await Promise.all([
    api(`/api/stints/${id}/hypotheses`).then((list) => { app.hypotheses = list; return db.meta.set('hyp:' + id, list); }, () => {}),
    refreshMaterials(),
  ]);
}

// The cached list may predate a deletion the changes feed has since brought: no stance is offered on it.
export async function dropDeletedHypotheses() {
  if (!app.stint) return;
  const gone = await sync.deletedHypotheses(app.stint.id);
  if (gone.size) app.hypotheses = app.hypotheses.filter((x) => !gone.has(x.id));
}

export async function refreshMaterials() {
  if (!app.stint) return;
  try {
    const page = await api(`/api/stints/${app.stint.id}/materials?limit=500`);
    app.materials = page.items || [];
    await db.meta.set('mat:' + app.stint.id, app.materials);
  } catch { /* keep cached */ }
}

export async function chooseStint(stint) {
  app.stint = stint;
  await db.meta.set('stintId', stint.id);
  await loadStintDetails();
  renderChrome();
}
