// The log by day with daily summaries, and one observation's page with its materials.
import { h, clear } from './dom.js';
import { t, fmtTime } from './i18n.js';
import { api } from './api.js';
import * as db from './db.js';
import * as sync from './sync.js';
import { localThumb, observationCards, observationForm } from './capture.js';
import { route } from './router.js';
import { app, button, canWrite, dayOf, field, needStint, stintToday, toast } from './shell.js';

export async function timelineView() {
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

export async function observationView(id) {
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
