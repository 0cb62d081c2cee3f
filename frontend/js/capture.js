// Capture: today's log and the observation form (also used to edit an observation).
import { h, clear, localIso } from './dom.js';
import { t, fmtTime } from './i18n.js';
import * as sync from './sync.js';
import { route } from './router.js';
import { KINDS, app, button, canWrite, dayOf, field, needStint, newestFirst, select, stintToday, toast } from './shell.js';

const DIMENSIONS = ['scene', 'words_actions', 'organisation'];
const thumbs = new Map(); // upload id -> object URL

export function observationForm(stint, existing, onDone) {
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

export async function captureView() {
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

export async function observationCards(items) {
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

export function localThumb(u) {
  if (!u.blob || !String(u.blob.type).startsWith('image/')) return h('span', { class: 'file pending' }, u.filename);
  if (!thumbs.has(u.id)) thumbs.set(u.id, URL.createObjectURL(u.blob));
  return h('img', { src: thumbs.get(u.id), alt: u.filename, class: 'thumb pending' });
}
