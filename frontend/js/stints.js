// Choosing or creating a stint.
import { h } from './dom.js';
import { t } from './i18n.js';
import { api } from './api.js';
import { app, chooseStint, field, loadStints, select, stintToday, toast } from './shell.js';

const PURPOSES = ['product', 'benchmark', 'customer_success', 'other'];

export async function stintsView() {
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
