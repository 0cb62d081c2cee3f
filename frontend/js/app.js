// Fieldbook PWA: the screens. Plain ES modules, DOM built with h() (never innerHTML).
import { h, clear, snippet, localIso, uuid } from './dom.js';
import { t, getLang, setLang, fmtTime } from './i18n.js';
import { api } from './api.js';
import * as db from './db.js';
import * as sync from './sync.js';
import { foldForSearch } from './fold.js';

const KINDS = ['note', 'quote', 'behaviour', 'process', 'pain_point', 'idea', 'question'];
const DIMENSIONS = ['scene', 'words_actions', 'organisation'];
const PURPOSES = ['product', 'benchmark', 'customer_success', 'other'];
const FIELD_LABEL = { text: 'text', kind: 'kind', quote: 'quote', speaker_role: 'speaker', dimension: 'dimension', tags: 'tags', hypothesis_links: 'hypothesis', observed_at: 'observedAt' };
const STATUSES = ['proposed', 'approved', 'in_progress', 'done', 'rejected'];

const app = { user: null, stints: [], stint: null, hypotheses: [], materials: [], online: navigator.onLine };
const view = document.getElementById('view');
const thumbs = new Map(); // upload id -> object URL

// ---------------------------------------------------------------- shell

function toast(text) {
  const el = document.getElementById('toast');
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 2500);
}

function renderChrome() {
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

function renderSyncBadge(s) {
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

function field(label, control, hint) {
  const id = control.id || (control.id = 'f-' + uuid().slice(0, 8));
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hint ? h('small', {}, hint) : null);
}

function select(name, options, value, labelOf) {
  return h('select', { name }, options.map((o) => h('option', { value: o, selected: o === value }, labelOf(o))));
}

function button(text, onclick, cls = '') {
  return h('button', { type: 'button', class: cls, onclick }, text);
}

function stintToday() {
  const tz = (app.stint && app.stint.timezone) || undefined;
  try { return new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date()); } catch { return localIso().slice(0, 10); }
}

function dayOf(o) {
  if (o.day) return o.day;
  const tz = (app.stint && app.stint.timezone) || undefined;
  try { return new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(o.observed_at)); } catch { return String(o.observed_at).slice(0, 10); }
}

function needStint() {
  if (app.stint) return false;
  location.hash = '#/stints';
  return true;
}

function canWrite() {
  return app.stint && (app.stint.my_role === 'researcher' || app.stint.my_role === 'manager');
}

// ---------------------------------------------------------------- data

async function loadUser() {
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

async function loadStints() {
  app.stints = (await db.meta.get('stints')) || [];
  try {
    app.stints = await api('/api/stints');
    await db.meta.set('stints', app.stints);
  } catch { /* offline: the cached list */ }
  const chosen = (app.stint && app.stint.id) || (await db.meta.get('stintId'));
  app.stint = app.stints.find((s) => s.id === chosen) || app.stints[0] || null;
  await loadStintDetails();
}

async function loadStintDetails() {
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
async function dropDeletedHypotheses() {
  if (!app.stint) return;
  const gone = await sync.deletedHypotheses(app.stint.id);
  if (gone.size) app.hypotheses = app.hypotheses.filter((x) => !gone.has(x.id));
}

async function refreshMaterials() {
  if (!app.stint) return;
  try {
    const page = await api(`/api/stints/${app.stint.id}/materials?limit=500`);
    app.materials = page.items || [];
    await db.meta.set('mat:' + app.stint.id, app.materials);
  } catch { /* keep cached */ }
}

async function chooseStint(stint) {
  app.stint = stint;
  await db.meta.set('stintId', stint.id);
  await loadStintDetails();
  renderChrome();
}

// ---------------------------------------------------------------- sign in

function signInView(message) {
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

// ---------------------------------------------------------------- capture

function observationForm(stint, existing, onDone) {
  const o = existing || {};
  const text = h('textarea', { name: 'text', rows: 4, required: true, maxlength: 10000 }, o.text || '');
  const kind = select('kind', KINDS, o.kind || 'note', (k) => t('kind_' + k));
  const quote = h('textarea', { name: 'quote', rows: 2, maxlength: 2000 }, o.quote || '');
  const speaker = h('input', { name: 'speaker_role', maxlength: 100, value: o.speaker_role || '', list: 'roles' });
  const dims = h('div', { class: 'segmented', role: 'radiogroup', 'aria-label': t('dimension') },
    ['', ...DIMENSIONS].map((d) => h('label', { class: 'seg' },
      h('input', { type: 'radio', name: 'dimension', value: d, checked: (o.dimension || '') === d }),
      h('span', {}, d ? t('dim_' + d) : t('none')))));
  const tags = h('input', { name: 'tags', value: (o.tags || []).join(', '), list: 'tag-suggestions', autocomplete: 'off' });
  // Its hypothesis links, all of them: a stance (or none) for each hypothesis of the stint. Links to
  // hypotheses this device does not list (not loaded yet, or deleted) are kept as they are. An edit
  // sends the list only when it changed (absent: unchanged on the server).
  const stanceOf = new Map();
  for (const l of o.hypothesis_links || []) if (!stanceOf.has(l.hypothesis_id)) stanceOf.set(l.hypothesis_id, l.stance || 'supports');
  for (const id of o.hypothesis_ids || []) if (!stanceOf.has(id)) stanceOf.set(id, 'supports');
  const linkKey = (l) => `${l.hypothesis_id}:${l.stance}`;
  const before = [...stanceOf].map(([id, stance]) => linkKey({ hypothesis_id: id, stance })).sort().join();
  const listed = new Set(app.hypotheses.map((x) => x.id));
  const stances = app.hypotheses.map((x) => ({ id: x.id, statement: x.statement, control: h('select', { name: 'stance', 'data-hypothesis': x.id },
    ['', 'supports', 'refutes'].map((s) => h('option', { value: s, selected: (stanceOf.get(x.id) || '') === s },
      s ? (s === 'refutes' ? '✗ ' : '✓ ') + t('stance_' + s) : t('none')))) }));
  const linkCount = h('span', { class: 'count' });
  const countLinks = () => { const n = stances.filter((x) => x.control.value).length; linkCount.textContent = n ? ` (${n})` : ''; };
  countLinks();
  const hyp = stances.length ? h('details', { class: 'links', open: stances.some((x) => x.control.value), onchange: countLinks },
    h('summary', {}, t('hypothesis'), linkCount),
    stances.map((x) => field(x.statement, x.control))) : null;
  const chosenLinks = () => [
    ...[...stanceOf].filter(([id]) => !listed.has(id)).map(([id, stance]) => ({ hypothesis_id: id, stance })),
    ...stances.filter((x) => x.control.value).map((x) => ({ hypothesis_id: x.id, stance: x.control.value })),
  ];
  const files = [];
  const previews = h('div', { class: 'thumbs', 'aria-live': 'polite' });
  const addFiles = (list) => {
    for (const f of list) {
      files.push(f);
      previews.append(f.type.startsWith('image/') ? h('img', { src: URL.createObjectURL(f), alt: f.name, class: 'thumb' }) : h('span', { class: 'file' }, f.name));
    }
  };
  const photo = h('input', { type: 'file', accept: 'image/*', capture: 'environment', class: 'visually-hidden', id: 'photo-input', onchange: (e) => { addFiles(e.target.files); e.target.value = ''; } });
  const attach = h('input', { type: 'file', class: 'visually-hidden', id: 'file-input', multiple: true, onchange: (e) => { addFiles(e.target.files); e.target.value = ''; } });
  const status = h('p', { class: 'status', role: 'status' });

  // One thumb between meetings: the words, a photo and Save come first; the rest folds away.
  const more = !!(o.quote || o.speaker_role || o.dimension || (o.tags || []).length);
  const form = h('form', { class: 'card capture', 'aria-label': existing ? t('edit') : t('today') },
    field(t('text'), text),
    field(t('kind'), kind),
    hyp,
    h('div', { class: 'row buttons' },
      h('label', { for: 'photo-input', class: 'button' }, t('photo')), photo,
      h('label', { for: 'file-input', class: 'button' }, t('attach')), attach,
      h('button', { type: 'submit', class: 'primary' }, t('save')),
      existing ? button(t('cancel'), () => onDone(null)) : null),
    previews,
    h('details', { class: 'more', open: more },
      h('summary', {}, t('moreFields')),
      h('fieldset', {}, h('legend', {}, t('dimension')), dims),
      field(t('quote'), quote),
      field(t('speaker'), speaker),
      field(t('tags'), tags)),
    status);

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!text.value.trim()) { text.focus(); return; }
    const dimension = form.querySelector('input[name=dimension]:checked');
    const data = {
      text: text.value.trim(),
      kind: kind.value,
      quote: quote.value.trim() || null,
      speaker_role: speaker.value.trim() || null,
      dimension: (dimension && dimension.value) || null,
      tags: tags.value.split(/[,，;；]/).map((s) => s.trim()).filter(Boolean),
      hypothesis_links: chosenLinks(),
    };
    if (existing) {
      const changes = {};
      for (const [k, v] of Object.entries(data)) {
        if (k === 'hypothesis_links') {
          if (before !== v.map(linkKey).sort().join()) changes.hypothesis_links = v;
        } else if (JSON.stringify(o[k] ?? null) !== JSON.stringify(v ?? null)) changes[k] = v;
      }
      if (Object.keys(changes).length) await sync.updateObservation(existing, changes);
      if (files.length) await sync.addFiles(stint.id, existing.id, files);
    } else {
      data.observed_at = localIso();
      await sync.createObservation(stint.id, data, files);
    }
    toast(app.online ? t('savedSynced') : t('saved'));
    onDone(data);
    if (app.online) sync.sync('save');
  });
  return form;
}

async function tagSuggestions(stintId) {
  const counts = new Map();
  const roles = new Set();
  for (const o of await sync.observations(stintId)) {
    for (const tag of o.tags || []) counts.set(tag, (counts.get(tag) || 0) + 1);
    if (o.speaker_role) roles.add(o.speaker_role);
  }
  return {
    tags: h('datalist', { id: 'tag-suggestions' }, [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 30).map(([tag]) => h('option', { value: tag }))),
    roles: h('datalist', { id: 'roles' }, [...roles].map((r) => h('option', { value: r }))),
  };
}

async function captureView() {
  if (needStint()) return h('section');
  const stint = app.stint;
  const list = h('ol', { class: 'observations', 'aria-label': t('today') });
  const refresh = async () => {
    const today = stintToday();
    const items = (await sync.observations(stint.id)).filter((o) => dayOf(o) === today);
    clear(list).append(...(await observationCards(items)));
    if (!items.length) list.append(h('li', { class: 'empty' }, t('noObservations')));
  };
  const { tags, roles } = await tagSuggestions(stint.id);
  const section = h('section', { class: 'view' },
    h('h1', {}, t('today'), ' ', h('small', {}, stintToday())),
    canWrite() ? observationForm(stint, null, () => { route(); }) : null,
    tags, roles, list);
  await refresh();
  section.refresh = refresh;
  return section;
}

// Newest first by the instant: observed_at carries each phone's own UTC offset, so its text does
// not sort in time order (10:00+08:00 is before 09:00Z).
const observedMs = (o) => Date.parse(o.observed_at) || 0;
const newestFirst = (a, b) => observedMs(b) - observedMs(a);

async function observationCards(items) {
  const pending = await sync.pendingUploads();
  items.sort(newestFirst);
  return items.map((o) => {
    const mats = app.materials.filter((m) => m.observation_id === o.id && m.has_preview);
    const local = pending.filter((u) => u.observation_id === o.id);
    return h('li', { class: 'obs' + (o._pending ? ' pending' : '') },
      h('a', { href: `#/obs/${o.id}`, class: 'obs-link' },
        h('div', { class: 'meta' }, h('span', { class: 'kind' }, t('kind_' + o.kind)),
          o.dimension ? h('span', {}, t('dim_' + o.dimension)) : null,
          h('time', { datetime: o.observed_at }, fmtTime(o.observed_at)),
          o._pending ? h('span', { class: 'badge' }, t('pending')) : null),
        h('p', { class: 'text' }, o.text),
        o.quote ? h('blockquote', {}, '“', o.quote, '”', o.speaker_role ? h('cite', {}, ' — ', o.speaker_role) : null) : null,
        (o.tags || []).length ? h('p', { class: 'tags' }, o.tags.map((x) => h('span', { class: 'tag' }, '#', x))) : null,
        mats.length || local.length ? h('div', { class: 'thumbs' },
          mats.map((m) => h('img', { src: `/api/materials/${m.id}/preview?size=thumb`, alt: m.caption || m.filename, class: 'thumb', loading: 'lazy' })),
          local.map((u) => localThumb(u))) : null));
  });
}

function localThumb(u) {
  if (!u.blob || !String(u.blob.type).startsWith('image/')) return h('span', { class: 'file pending' }, u.filename);
  if (!thumbs.has(u.id)) thumbs.set(u.id, URL.createObjectURL(u.blob));
  return h('img', { src: thumbs.get(u.id), alt: u.filename, class: 'thumb pending' });
}

// ---------------------------------------------------------------- timeline and observation page

async function timelineView() {
  if (needStint()) return h('section');
  const items = await sync.observations(app.stint.id);
  const byDay = new Map();
  for (const o of items) {
    const d = dayOf(o);
    if (!byDay.has(d)) byDay.set(d, []);
    byDay.get(d).push(o);
  }
  const sums = await sync.summaries(app.stint.id);
  const today = stintToday();
  const days = [...new Set([...byDay.keys(), ...sums.map((x) => x.day), ...(canWrite() ? [today] : [])])].sort().reverse();
  const section = h('section', { class: 'view' }, h('h1', {}, t('days'), ' · ', app.stint.title));
  if (!days.length) section.append(h('p', { class: 'empty' }, t('noObservations')));
  for (const d of days) {
    const list = byDay.get(d) || [];
    section.append(h('h2', { class: 'day', 'data-focus': d }, d, ' ', h('small', {}, `(${list.length})`)),
      summaryBlock(d, sums.filter((x) => x.day === d)),
      h('ol', { class: 'observations' }, ...(await observationCards(list))));
  }
  return section;
}

function summaryBlock(day, sums) {
  const mine = sums.find((x) => app.user && x.author_id === app.user.id);
  const others = sums.filter((x) => x !== mine && x.summary);
  const block = h('div', { class: 'summaries' }, others.map((x) => h('p', { class: 'summary' }, h('strong', {}, x.author_name || ''), ' ', x.summary)));
  if (!canWrite()) return mine && mine.summary ? (block.append(h('p', { class: 'summary' }, mine.summary)), block) : block;
  const text = h('textarea', { name: 'summary', rows: 2, maxlength: 10000 }, (mine && mine.summary) || '');
  const form = h('form', { class: 'summary-form' }, field(t('daySummary'), text),
    h('div', { class: 'row buttons' }, h('button', { type: 'submit' }, t('save')), mine && mine._pending ? h('span', { class: 'badge' }, t('pending')) : null));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!text.value.trim() && !(mine && mine.summary)) { text.focus(); return; }
    await sync.saveSummary(app.stint.id, day, text.value.trim());
    toast(app.online ? t('savedSynced') : t('saved'));
    if (app.online) sync.sync('summary');
    route();
  });
  block.append(form);
  return block;
}

async function observationView(id) {
  if (needStint()) return h('section');
  let o = (await sync.observations(app.stint.id)).find((x) => x.id === id);
  if (!o && app.online) {
    try { o = await api(`/api/observations/${id}`); } catch { o = null; }
  }
  if (!o) return h('section', { class: 'view' }, h('p', { class: 'empty' }, t('noResults')));
  const section = h('section', { class: 'view' });
  const show = async () => {
    const local = await sync.pendingUploads(id);
    let mats = app.materials.filter((m) => m.observation_id === id);
    if (app.online && !o._pending) {
      try { mats = (await api(`/api/stints/${o.stint_id}/materials?observation_id=${id}`)).items || mats; } catch { /* cached */ }
    }
    mats = await sync.withMaterialEdits(mats);
    clear(section).append(
      h('h1', {}, t('observation')),
      h('article', { class: 'card' },
        h('div', { class: 'meta' }, h('span', { class: 'kind' }, t('kind_' + o.kind)), o.dimension ? h('span', {}, t('dim_' + o.dimension)) : null,
          h('time', { datetime: o.observed_at }, fmtTime(o.observed_at)), o.author_name ? h('span', {}, o.author_name) : null,
          o._pending ? h('span', { class: 'badge' }, t('pending')) : null),
        h('p', { class: 'text' }, o.text),
        o.quote ? h('blockquote', {}, '“', o.quote, '”', o.speaker_role ? h('cite', {}, ' — ', o.speaker_role) : null) : null,
        (o.tags || []).length ? h('p', { class: 'tags' }, o.tags.map((x) => h('span', { class: 'tag' }, '#', x))) : null,
        (o.hypothesis_links || []).length ? h('ul', { class: 'links' }, o.hypothesis_links.map((l) => {
          const hy = app.hypotheses.find((x) => x.id === l.hypothesis_id);
          return h('li', {}, l.stance === 'refutes' ? '✗ ' : '✓ ', hy ? hy.statement : l.hypothesis_id);
        })) : null),
      h('h2', {}, t('materials')),
      h('div', { class: 'gallery' },
        mats.map((m) => materialTile(m, show)),
        local.map((u) => h('figure', { class: 'material' }, localThumb(u),
          canWrite() ? h('figcaption', {}, button(t('delete'), async () => {
            if (!confirm(t('confirmDeleteMaterial'))) return;
            await sync.discardUpload(u.id);
            await show();
          }, 'small danger')) : null))),
      canWrite() && o.stint_id === app.stint.id ? h('div', { class: 'row buttons' },
        button(t('edit'), () => { clear(section).append(observationForm(app.stint, o, () => route())); }),
        button(t('delete'), async () => {
          if (!confirm(t('confirmDelete'))) return;
          await sync.deleteObservation(o);
          if (app.online) sync.sync('delete');
          location.hash = '#/timeline';
        }, 'danger')) : null);
  };
  await show();
  return section;
}

// A material with its caption; its uploader or a manager may edit the caption or delete it, offline
// too: the change goes through the outbox and shows here at once.
function materialTile(m, refresh) {
  const view = m.has_preview
    ? h('a', { href: `/api/materials/${m.id}/preview?size=screen`, target: '_blank', rel: 'noopener' }, h('img', { src: `/api/materials/${m.id}/preview?size=thumb`, alt: m.caption || m.filename, class: 'thumb large' }))
    : h('a', { href: `/api/materials/${m.id}/content`, class: 'file' }, m.filename);
  const mayChange = canWrite() && (app.stint.my_role === 'manager' || (app.user && m.uploaded_by === app.user.id));
  const remember = async (change) => {
    app.materials = change(app.materials);
    await db.meta.set('mat:' + app.stint.id, app.materials);
    if (app.online) sync.sync('material');
    await refresh();
  };
  return h('figure', { class: 'material', 'data-id': m.id }, view,
    h('figcaption', {}, m.caption ? h('span', { class: 'caption' }, m.caption) : null,
      mayChange ? h('span', { class: 'row' },
        button(t('editCaption'), async () => {
          const caption = prompt(t('caption'), m.caption || '');
          if (caption === null || caption.trim() === (m.caption || '')) return;
          await sync.updateMaterial(m, { caption: caption.trim() || null });
          await remember((all) => all.map((x) => (x.id === m.id ? { ...x, caption: caption.trim() || null } : x)));
        }, 'small'),
        button(t('delete'), async () => {
          if (!confirm(t('confirmDeleteMaterial'))) return;
          await sync.deleteMaterial(m);
          await remember((all) => all.filter((x) => x.id !== m.id));
        }, 'small danger')) : null));
}

// ---------------------------------------------------------------- search

async function searchView(params) {
  const q = params.get('q') || '';
  const input = h('input', { type: 'search', name: 'q', value: q, placeholder: t('searchPlaceholder'), 'aria-label': t('search'), enterkeyhint: 'search' });
  const kind = h('select', { name: 'kind', 'aria-label': t('kind') }, h('option', { value: '' }, t('any')), KINDS.map((k) => h('option', { value: k, selected: params.get('kind') === k }, t('kind_' + k))));
  const sort = h('select', { name: 'sort', 'aria-label': t('sort') }, ['relevance', 'newest', 'oldest'].map((s) => h('option', { value: s, selected: (params.get('sort') || 'relevance') === s }, t('sort_' + s))));
  const from = h('input', { type: 'date', name: 'from', value: params.get('from') || '' });
  const to = h('input', { type: 'date', name: 'to', value: params.get('to') || '' });
  const results = h('div', { class: 'results', 'aria-live': 'polite' });
  const form = h('form', { class: 'card search', role: 'search' },
    h('div', { class: 'row' }, input, h('button', { type: 'submit', class: 'primary' }, t('search'))),
    h('details', {}, h('summary', {}, t('kind'), ' · ', t('from'), '/', t('to'), ' · ', t('sort')),
      h('div', { class: 'row' }, field(t('kind'), kind), field(t('sort'), sort)),
      h('div', { class: 'row' }, field(t('from'), from), field(t('to'), to))));
  const go = (extra = {}) => {
    const p = new URLSearchParams();
    const values = { q: input.value.trim(), kind: kind.value, sort: sort.value === 'relevance' ? '' : sort.value, from: from.value, to: to.value, tag: params.get('tag') || '', author: params.get('author') || '', stint_id: params.get('stint_id') || '', ...extra };
    for (const [k, v] of Object.entries(values)) if (v) p.set(k, v);
    location.hash = '#/search?' + p.toString();
  };
  form.addEventListener('submit', (ev) => { ev.preventDefault(); go(); });
  const section = h('section', { class: 'view' }, h('h1', {}, t('search')), form, results);
  if (!q) return section;
  if (!app.online) { results.append(...(await localSearch(q, params))); return section; }
  const query = new URLSearchParams(params);
  query.set('per_page', '30');
  try {
    const res = await api('/api/search?' + query.toString());
    const facets = h('div', { class: 'facets' });
    const FACET_PARAM = { kinds: 'kind', tags: 'tag', authors: 'author', stints: 'stint_id' };
    for (const [name, values] of Object.entries(res.facets || {})) {
      const param = FACET_PARAM[name];
      if (!param || !values.length) continue;
      facets.append(h('div', { class: 'facet' }, h('span', { class: 'facet-name' }, t(param === 'stint_id' ? 'stint' : param)),
        values.slice(0, 12).map((v) => {
          const on = params.get(param) === v.value;
          return h('button', { type: 'button', class: 'chip' + (on ? ' on' : ''), 'aria-pressed': String(on), onclick: () => go({ [param]: on ? '' : v.value }) },
            param === 'kind' ? t('kind_' + v.value) : v.label, ` ${v.count}`);
        })));
    }
    // Each hit opens its record: an observation its page, a material its file; insights, actions and
    // days have no page of their own, so their list (in the hit's stint) opens scrolled to them.
    const hitHref = (hit) => {
      const inStint = (page, focus) => `#/${page}?stint=${encodeURIComponent(hit.stint_id)}&focus=${encodeURIComponent(focus)}`;
      switch (hit.type) {
        case 'observation': return `#/obs/${hit.id}`;
        case 'material': return `/api/materials/${hit.id}/content`;
        case 'insight': return inStint('debrief', hit.id);
        case 'action': return inStint('actions', hit.id);
        case 'day': return inStint('timeline', hit.day);
        default: return '#/search?' + query.toString();
      }
    };
    results.append(h('p', { class: 'count' }, t('results', res.total)), facets,
      h('ol', { class: 'hits' }, res.hits.map((hit) => h('li', { class: 'hit', 'data-type': hit.type },
        h('a', { href: hitHref(hit), class: 'obs-link' },
          h('div', { class: 'meta' }, h('span', { class: 'kind' }, hit.kind ? t('kind_' + hit.kind) : t('type_' + hit.type)),
            h('span', {}, hit.stint_title), hit.day ? h('span', {}, hit.day) : null, hit.author_name ? h('span', {}, hit.author_name) : null),
          h('p', { class: 'snippet' }, snippet(hit.snippet)))))));
    if (!res.total) results.append(h('p', { class: 'empty' }, t('noResults')));
  } catch (e) {
    results.append(h('p', { class: 'error' }, e.message));
  }
  return section;
}

// Offline: the observations on this device, matched as plain substrings after folding both sides
// as the server's search does (traditional as simplified, case), matches marked.
async function localSearch(q, params) {
  const needle = foldForSearch(q);
  const server = (await db.all('records')).filter((r) => r.type === 'observation' && r.data && !r.data._deleted).map((r) => r.data);
  const pending = app.stint ? await sync.observations(app.stint.id) : [];
  const byId = new Map([...server, ...pending].map((o) => [o.id, o]));
  const kind = params.get('kind');
  const hits = [...byId.values()].filter((o) => (!kind || o.kind === kind)
    && [o.text, o.quote, o.speaker_role, ...(o.tags || [])].some((f) => f && foldForSearch(f).includes(needle)));
  hits.sort(newestFirst);
  const mark = (text) => {
    const out = [];
    let at = 0;
    const folded = foldForSearch(text); // the same offsets as text
    for (let i = folded.indexOf(needle); i >= 0 && needle; i = folded.indexOf(needle, at)) {
      out.push(text.slice(at, i), h('mark', {}, text.slice(i, i + needle.length)));
      at = i + needle.length;
    }
    out.push(text.slice(at));
    return out;
  };
  return [
    h('p', { class: 'count' }, t('offlineSearch'), ' · ', t('results', hits.length)),
    h('ol', { class: 'hits' }, hits.slice(0, 100).map((o) => h('li', { class: 'hit' },
      h('a', { href: `#/obs/${o.id}`, class: 'obs-link' },
        h('div', { class: 'meta' }, h('span', { class: 'kind' }, t('kind_' + o.kind)), h('span', {}, dayOf(o)), o._pending ? h('span', { class: 'badge' }, t('pending')) : null),
        h('p', { class: 'snippet' }, mark(o.text), o.quote ? [' “', mark(o.quote), '”'] : null))))),
    hits.length ? null : h('p', { class: 'empty' }, t('noResults')),
  ].filter(Boolean);
}

// ---------------------------------------------------------------- debrief: insights and shares

async function debriefView() {
  if (needStint()) return h('section');
  const section = h('section', { class: 'view' }, h('h1', {}, t('insights'), ' · ', app.stint.title));
  if (!app.online) { section.append(h('p', { class: 'empty' }, t('needOnline'))); return section; }
  try {
    const insights = await api(`/api/stints/${app.stint.id}/insights`);
    if (!insights.length) section.append(h('p', { class: 'empty' }, t('noInsights')));
    for (const ins of insights) {
      section.append(h('article', { class: 'card insight', 'data-focus': ins.id }, h('h2', {}, ins.title), h('p', {}, ins.statement),
        (ins.verdicts || []).length ? h('ul', { class: 'links' }, ins.verdicts.map((v) => h('li', {}, v.verdict === 'refutes' ? '✗ ' : '✓ ', v.statement))) : null,
        h('h3', {}, t('evidence')),
        h('ul', { class: 'evidence' }, (ins.evidence || []).map((ev) => h('li', {},
          ev.observation_id ? h('a', { href: `#/obs/${ev.observation_id}` }, ev.quote ? `“${ev.quote}” ` : '', ev.text || '') : null,
          ev.preview_url ? h('img', { src: ev.preview_url, alt: ev.caption || '', class: 'thumb' }) : null,
          ev.material_id && !ev.preview_url ? h('span', { class: 'file' }, ev.caption || ev.material_id) : null)))));
    }
  } catch (e) {
    section.append(h('p', { class: 'error' }, e.message));
  }
  if (app.stint.my_role === 'manager') section.append(await sharesPanel());
  return section;
}

async function sharesPanel() {
  const panel = h('section', { class: 'card shares', 'aria-label': t('shares') }, h('h2', {}, t('shares')));
  const days = h('input', { type: 'number', name: 'expires_in_days', min: 1, max: 365, value: 14 });
  const photos = h('input', { type: 'checkbox', name: 'include_photos' });
  const created = h('div', { 'aria-live': 'polite' });
  const list = h('ul', { class: 'share-list' });
  const refresh = async () => {
    clear(list);
    try {
      const shares = await api(`/api/stints/${app.stint.id}/shares`);
      for (const s of shares) {
        const views = h('ul', { class: 'accesses' });
        list.append(h('li', { class: s.active ? '' : 'inactive' },
          h('div', {}, h('strong', {}, s.label || s.id.slice(0, 8)), ' · ', s.active ? t('active') : t('revoked'),
            ' · ', t('expires'), ' ', fmtTime(s.expires_at)),
          h('div', { class: 'row buttons' },
            button(t('views', s.access_count), async () => {
              clear(views);
              // What was opened: the debrief (page or JSON) or a photo; nothing about which photo.
              for (const a of await api(`/api/shares/${s.id}/accesses`)) {
                views.append(h('li', { class: `access-${a.kind}` }, fmtTime(a.at), ' · ', t(`access_${a.kind}`), ' · ', a.user_agent));
              }
            }),
            s.active ? button(t('revoke'), async () => { await api(`/api/shares/${s.id}`, { method: 'DELETE' }); refresh(); }, 'danger') : null),
          views));
      }
    } catch (e) { list.append(h('li', { class: 'error' }, e.message)); }
  };
  const form = h('form', {}, h('div', { class: 'row' }, field(t('expiresDays'), days),
    h('label', { class: 'check' }, photos, ' ', t('includePhotos'))),
  h('button', { type: 'submit', class: 'primary' }, t('createShare')));
  // One Idempotency-Key per link being made: pressing again after a lost answer makes no second link.
  let attempt = null;
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { expires_in_days: Number(days.value), include_photos: photos.checked };
    if (!attempt || attempt.body !== JSON.stringify(body)) attempt = { body: JSON.stringify(body), key: uuid() };
    try {
      const s = await api(`/api/stints/${app.stint.id}/shares`, { method: 'POST', body, headers: { 'Idempotency-Key': attempt.key } });
      attempt = null;
      const url = new URL(s.url, location.href).href;
      const out = h('input', { readonly: true, value: url, 'aria-label': t('shares') });
      clear(created).append(h('div', { class: 'row' }, out, button(t('copy'), async () => {
        try { await navigator.clipboard.writeText(url); } catch { out.select(); document.execCommand('copy'); }
        toast(t('copied'));
      })));
      refresh();
    } catch (e) { clear(created).append(h('p', { class: 'error' }, e.message)); }
  });
  panel.append(form, created, list);
  await refresh();
  return panel;
}

// ---------------------------------------------------------------- actions

async function actionsView() {
  if (needStint()) return h('section');
  const section = h('section', { class: 'view' }, h('h1', {}, t('actions'), ' · ', app.stint.title));
  if (!app.online) { section.append(h('p', { class: 'empty' }, t('needOnline'))); return section; }
  const manager = app.stint.my_role === 'manager';
  if (canWrite()) {
    const title = h('input', { name: 'title', required: true, maxlength: 200 });
    const desc = h('textarea', { name: 'description', rows: 2 });
    const owner = h('input', { type: 'email', name: 'owner_email' });
    const due = h('input', { type: 'date', name: 'due_date' });
    const form = h('form', { class: 'card' }, h('details', {}, h('summary', {}, t('newAction')),
      field(t('title'), title), field(t('description'), desc),
      h('div', { class: 'row' }, field(t('owner'), owner), field(t('due'), due)),
      h('button', { type: 'submit', class: 'primary' }, t('create'))));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        await api(`/api/stints/${app.stint.id}/actions`, { method: 'POST', body: { title: title.value, description: desc.value || null, owner_email: owner.value || null, due_date: due.value || null } });
        route();
      } catch (e) { toast(e.message); }
    });
    section.append(form);
  }
  try {
    const actions = await api(`/api/stints/${app.stint.id}/actions`);
    if (!actions.length) section.append(h('p', { class: 'empty' }, t('noActions')));
    const board = h('div', { class: 'board' });
    for (const status of STATUSES) {
      const col = actions.filter((a) => a.status === status);
      if (!col.length) continue;
      board.append(h('section', { class: 'column', 'aria-label': t('status_' + status) }, h('h2', {}, t('status_' + status), ` (${col.length})`),
        col.map((a) => actionCard(a, manager))));
    }
    section.append(board);
  } catch (e) {
    section.append(h('p', { class: 'error' }, e.message));
  }
  return section;
}

function actionCard(a, manager) {
  const comment = h('input', { name: 'comment', 'aria-label': t('comment'), placeholder: t('comment') });
  const review = async (decision) => {
    try {
      await api(`/api/actions/${a.id}/review`, { method: 'POST', body: { decision, comment: comment.value }, headers: { 'If-Match': `"${a.version}"` } });
      toast(t(decision === 'approve' ? 'status_approved' : decision === 'reject' ? 'status_rejected' : 'requestChanges'));
      route();
    } catch (e) { toast(e.message); }
  };
  const owner = app.user && a.owner_id === app.user.id;
  const NEXT = { approved: ['in_progress', 'done'], in_progress: ['done', 'approved'], done: ['in_progress'] };
  return h('article', { class: 'card action', 'data-status': a.status, 'data-focus': a.id },
    h('h3', {}, a.title),
    a.description ? h('p', {}, a.description) : null,
    h('div', { class: 'meta' },
      h('span', { class: 'kind' }, t('status_' + a.status)),
      h('span', {}, t('priority'), ': ', t('lvl_' + a.priority)),
      a.owner_name || a.owner_email ? h('span', {}, t('owner'), ': ', a.owner_name || a.owner_email) : null,
      a.due_date ? h('span', { class: a.overdue ? 'overdue' : '' }, t('due'), ': ', a.due_date) : null),
    a.last_review ? h('p', { class: 'review' }, a.last_review.comment || '') : null,
    manager && a.status === 'proposed' ? h('div', { class: 'review-form' }, comment,
      h('div', { class: 'row buttons' },
        button(t('approve'), () => review('approve'), 'primary'),
        button(t('reject'), () => review('reject'), 'danger'),
        button(t('requestChanges'), () => review('request_changes')))) : null,
    (owner || manager) && NEXT[a.status] ? h('div', { class: 'row buttons' }, NEXT[a.status].map((s) =>
      button(`${t('moveTo')}: ${t('status_' + s)}`, async () => {
        try {
          await api(`/api/actions/${a.id}`, { method: 'PATCH', body: { status: s }, headers: { 'If-Match': `"${a.version}"` } });
          route();
        } catch (e) { toast(e.message); }
      }))) : null);
}

// ---------------------------------------------------------------- me: sync, sessions, language

async function meView() {
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

// ---------------------------------------------------------------- stints

async function stintsView() {
  const section = h('section', { class: 'view' }, h('h1', {}, t('chooseStint')));
  if (!app.stints.length) section.append(h('p', { class: 'empty' }, t('noStints')));
  section.append(h('ul', { class: 'stints' }, app.stints.map((s) => h('li', {},
    h('button', { type: 'button', 'data-id': s.id, 'aria-pressed': String(!!(app.stint && app.stint.id === s.id)), class: 'stint' + (app.stint && app.stint.id === s.id ? ' on' : ''), onclick: async () => { await chooseStint(s); location.hash = '#/capture'; } },
      h('strong', {}, s.title), h('span', {}, `${s.customer} · ${s.start_date} – ${s.end_date}`))))));
  const title = h('input', { name: 'title', required: true });
  const customer = h('input', { name: 'customer', required: true });
  const purpose = select('purpose', PURPOSES, 'product', (p) => t('purpose_' + p));
  const start = h('input', { type: 'date', name: 'start_date', required: true, value: stintToday() });
  const end = h('input', { type: 'date', name: 'end_date', required: true });
  const form = h('form', { class: 'card' }, h('details', {}, h('summary', {}, t('newStint')),
    field(t('title'), title), field(t('customer'), customer), field(t('purpose'), purpose),
    h('div', { class: 'row' }, field(t('startDate'), start), field(t('endDate'), end)),
    h('button', { type: 'submit', class: 'primary' }, t('create'))));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const s = await api('/api/stints', { method: 'POST', body: { title: title.value, customer: customer.value, purpose: purpose.value, start_date: start.value, end_date: end.value, timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC' } });
      await loadStints();
      await chooseStint(app.stints.find((x) => x.id === s.id) || s);
      location.hash = '#/capture';
    } catch (e) { toast(e.message); }
  });
  section.append(form);
  return section;
}

// ---------------------------------------------------------------- router

// soft: a background refresh (after a sync); it never replaces a screen the user has typed into.
let routing = 0;
function busy() {
  return view.dataset.dirty === '1' || (document.activeElement && view.contains(document.activeElement) && /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName));
}
async function route(soft = false) {
  if (soft && busy()) return;
  const mine = ++routing;
  const [path, query] = (location.hash.slice(1) || '/capture').split('?');
  const params = new URLSearchParams(query || '');
  const parts = path.split('/').filter(Boolean);
  let el;
  // A link into another stint's list (a search hit: ?stint=…&focus=…) switches to that stint first.
  const inStint = params.get('stint');
  if (app.user && inStint && (!app.stint || app.stint.id !== inStint)) {
    const wanted = app.stints.find((s) => s.id === inStint);
    if (wanted) await chooseStint(wanted);
  }
  if (!app.user) el = signInView();
  else {
    switch (parts[0]) {
      case 'signin': el = signInView(); break;
      case 'timeline': el = await timelineView(); break;
      case 'obs': el = await observationView(parts[1]); break;
      case 'search': el = await searchView(params); break;
      case 'debrief': el = await debriefView(); break;
      case 'actions': el = await actionsView(); break;
      case 'me': el = await meView(); break;
      case 'stints': el = await stintsView(); break;
      default: el = await captureView();
    }
  }
  if (mine !== routing) return; // a later navigation won
  if (soft && busy()) return;
  delete view.dataset.dirty;
  clear(view).append(el);
  view.dataset.route = app.user ? parts[0] || 'capture' : 'signin';
  renderChrome();
  const focus = params.get('focus');
  const target = focus && !soft ? [...view.querySelectorAll('[data-focus]')].find((x) => x.dataset.focus === focus) : null;
  if (target) {
    target.setAttribute('aria-current', 'true');
    target.style.outline = '3px solid #5fb49c';
    target.scrollIntoView({ block: 'center' });
  }
  if (!document.body.dataset.ready) performance.mark('fieldbook-interactive');
  document.body.dataset.ready = '1';
}

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
        await refreshMaterials();
        view.firstChild.refresh();
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

// ---------------------------------------------------------------- service worker and its updates

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
