// Search: the server's, online; offline, the observations this device holds.
import { h, snippet } from './dom.js';
import { t } from './i18n.js';
import { api } from './api.js';
import * as db from './db.js';
import * as sync from './sync.js';
import { foldForSearch } from './fold.js';
import { KINDS, app, dayOf, field, newestFirst } from './shell.js';

export async function searchView(params) {
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
