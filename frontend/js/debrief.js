// The debrief: insights with their evidence, and (for managers) share links.
import { h, clear, uuid } from './dom.js';
import { t, fmtTime } from './i18n.js';
import { api } from './api.js';
import { app, button, field, needStint, toast } from './shell.js';

export async function debriefView() {
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
