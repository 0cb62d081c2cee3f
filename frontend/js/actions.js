// The improvement action plan: proposing actions, managers' review, moving them along.
import { h } from './dom.js';
import { t } from './i18n.js';
import { api } from './api.js';
import { route } from './router.js';
import { app, button, canWrite, field, needStint, toast } from './shell.js';

const STATUSES = ['proposed', 'approved', 'in_progress', 'done', 'rejected'];

export async function actionsView() {
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
