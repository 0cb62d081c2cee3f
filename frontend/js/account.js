// Signing in and out, and the account screen: language, sync state and conflicts, devices.
import { h } from './dom.js';
import { t, getLang, setLang, fmtTime } from './i18n.js';
import { api } from './api.js';
import * as db from './db.js';
import * as sync from './sync.js';
import { route } from './router.js';
import { app, button, field, loadStints, renderChrome } from './shell.js';

const FIELD_LABEL = { text: 'text', kind: 'kind', quote: 'quote', speaker_role: 'speaker', dimension: 'dimension', tags: 'tags', hypothesis_links: 'hypothesis', observed_at: 'observedAt' };

export function signInView(message) {
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const error = h('p', { class: 'error', role: 'alert' }, message || '');
  const form = h('form', { class: 'card signin', 'aria-label': t('signIn') },
    h('h1', {}, t('app')),
    field(t('email'), email), field(t('password'), password), error,
    h('button', { type: 'submit', class: 'primary' }, t('signIn')),
    langSwitch());
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    try {
      const res = await api('/api/auth/session', { method: 'POST', body: { email: email.value, password: password.value } });
      const before = await db.meta.get('user');
      if (before && before.id !== res.user.id) {
        // Another account on this device: its cached copies go (its outbox stays until synced by its owner).
        await db.write(['records', 'meta'], (tx) => { tx.clear('records'); tx.del('meta', 'cursor'); tx.del('meta', 'stintId'); });
      }
      app.user = res.user;
      sync.setUser(app.user.id);
      await db.meta.set('user', app.user);
      sync.state.needSignIn = false;
      await loadStints();
      renderChrome();
      location.hash = app.stint ? '#/capture' : '#/stints';
      route();
      sync.sync('signin');
    } catch (e) {
      error.textContent = e.status === 401 ? t('badLogin') : e.status === 0 ? t('needOnline') : e.message;
    }
  });
  return h('section', { class: 'view' }, form);
}

function langSwitch() {
  return h('div', { class: 'lang', role: 'group', 'aria-label': t('language') },
    [['zh-CN', '中文'], ['en', 'English']].map(([code, name]) => h('button', {
      type: 'button', lang: code, 'aria-pressed': String(getLang() === code), class: getLang() === code ? 'on' : '',
      onclick: () => { setLang(code); renderChrome(); route(); },
    }, name)));
}

export async function meView() {
  const s = sync.state;
  const section = h('section', { class: 'view' }, h('h1', {}, t('account')));
  section.append(h('div', { class: 'card' },
    h('p', {}, app.user ? `${app.user.name || ''} <${app.user.email}>` : ''),
    field(t('language'), langSwitch()),
    button(t('signOut'), signOut, 'danger')));

  // Sync: pending, last sync, errors, conflicts.
  const outbox = await db.all('outbox');
  const uploads = await db.all('uploads');
  section.append(h('section', { class: 'card sync-panel', 'aria-label': t('sync') },
    h('h2', {}, t('sync')),
    h('p', {}, app.online ? t('online') : t('offline'), ' · ', t('pendingN', s.pending), ' · ', t('lastSync'), ': ', fmtTime(s.lastSync)),
    s.photosWaiting ? h('p', { class: 'warn photos-waiting' }, t('photosWaitingN', s.photosWaiting), ': ', t('photosStalled')) : null,
    s.error ? h('p', { class: 'error', role: 'alert' }, t('syncError'), ': ', s.error === 'offline' ? t('offline') : s.error) : null,
    s.progress ? h('progress', { max: s.progress.total, value: s.progress.sent }) : null,
    button(s.running ? t('syncing') : t('syncNow'), () => sync.sync('manual'), 'primary'),
    outbox.length || uploads.length ? h('ul', { class: 'pending-list' },
      outbox.map((o) => h('li', {}, o.op === 'delete' ? `${t('delete')} · ` : '', (o.data && o.data.text) || o.id)),
      uploads.map((u) => h('li', {}, t('photos'), ': ', u.filename))) : null));

  const issues = await sync.issues();
  if (issues.length) {
    const box = h('section', { class: 'card issues', 'aria-label': t('issues') }, h('h2', {}, t('issues')));
    for (const is of issues) box.append(issueCard(is));
    section.append(box);
  }

  if (app.online) {
    const list = h('ul', { class: 'sessions' });
    try {
      for (const d of await api('/api/auth/sessions')) {
        list.append(h('li', {}, h('div', {}, d.current ? h('strong', {}, t('thisDevice'), ' · ') : null, d.user_agent.slice(0, 80)),
          h('small', {}, fmtTime(d.last_used_at)),
          d.current ? null : button(t('revokeDevice'), async () => { await api(`/api/auth/sessions/${d.id}`, { method: 'DELETE' }); route(); }, 'danger')));
      }
    } catch (e) { list.append(h('li', { class: 'error' }, e.message)); }
    section.append(h('section', { class: 'card', 'aria-label': t('sessions') }, h('h2', {}, t('sessions')), list));
  }
  return section;
}

function issueCard(is) {
  const mine = is.mine || (is.op && is.op.data) || {};
  const current = is.current || {};
  const fields = is.changes && is.changes.length ? is.changes.map((c) => c.field) : Object.keys(mine).filter((k) => !['id', 'stint_id'].includes(k));
  const show = (v) => (v === null || v === undefined ? '—' : Array.isArray(v) ? v.join(', ') : typeof v === 'object' ? JSON.stringify(v) : String(v));
  return h('article', { class: 'issue' },
    h('h3', {}, is.status === 'conflict' ? t('conflict') : t('rejected'), is.error ? ` · ${is.error.message}` : ''),
    is.status === 'conflict' ? h('table', { class: 'side-by-side' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, ''), h('th', { scope: 'col' }, t('server')), h('th', { scope: 'col' }, t('yours')))),
      h('tbody', {}, is.current === null || (is.current && is.current.deleted)
        ? h('tr', {}, h('th', { scope: 'row' }, ''), h('td', {}, t('deletedOnServer')), h('td', {}, show(mine.text)))
        : fields.map((f) => h('tr', {}, h('th', { scope: 'row' }, t(FIELD_LABEL[f] || f)), h('td', {}, show(current[f])), h('td', {}, show(mine[f])))))) : null,
    is.upload ? h('p', {}, t('photos'), ': ', is.upload.filename) : null,
    h('div', { class: 'row buttons' },
      is.op ? button(is.status === 'conflict' ? t('keepMine') : t('retry'), async () => { await sync.keepMine(is); sync.sync('resolve'); route(); }, 'primary') : null,
      button(is.status === 'conflict' ? t('keepServer') : t('discard'), async () => { await sync.dismiss(is); route(); })));
}

async function signOut() {
  try { await api('/api/auth/logout', { method: 'POST' }); } catch { /* offline: the cookie ends with its session */ }
  // The customer's data leaves this device with the session; what is still pending stays, tagged
  // with its author, and is sent when that account signs in again.
  await db.write(['records', 'meta'], (tx) => { tx.clear('records'); tx.del('meta', 'cursor'); tx.del('meta', 'stints'); tx.del('meta', 'stintId'); });
  for (const s of app.stints) { await db.meta.set('hyp:' + s.id, null); await db.meta.set('mat:' + s.id, null); }
  if (window.caches) await caches.delete('fieldbook-previews-v1');
  app.user = null; app.stints = []; app.stint = null;
  await db.meta.set('user', null);
  renderChrome();
  location.hash = '#/signin';
  route();
}
