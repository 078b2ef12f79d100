// The audit log (#/admin/audit): who changed what, when, from where
// (docs/roles.md, "The audit"), newest pages on demand, filtered by period
// and by user as audit.list allows, and by method in the page.

import { call } from '../../rpc.js';
import { t } from '../../i18n.js';
import { el, clear, field, loading, failure } from '../../ui.js';
import * as fmt from '../../fmt.js';
import { submitWith, listAll, ZONE } from '../venue.js';

// {"seats": 12} → 'seats: 12'; ids and counts only (docs/roles.md).
function summary(v) {
	if (v === null || v === undefined)
		return '';
	if (typeof v !== 'object')
		return String(v);
	return Object.entries(v).map(([k, x]) =>
	    `${k}: ${typeof x === 'object' ? JSON.stringify(x) : x}`).join(', ');
}

export const adminAudit = {
	route: '/admin/audit',
	roles: ['admin'],
	title: 'admin.audit.title',
	async render(root) {
		let users = [];
		try {
			users = await listAll('user.list');
		} catch (e) {
			users = [];
		}
		const names = new Map(users.map((u) => [u.id, u.display_name]));
		const today = fmt.ymd(new Date(), ZONE);
		const from = field({ name: 'from', type: 'date', label: t('admin.audit.from'),
		    attrs: { value: fmt.addMonths(today.slice(0, 8) + '01', -1) } });
		const to = field({ name: 'to', type: 'date', label: t('admin.audit.to'),
		    attrs: { value: today } });
		const user = field({ name: 'user_id', label: t('admin.audit.user'),
		    options: [['', t('admin.audit.everyone')],
			...users.map((u) => [String(u.id), `${u.display_name} (${u.email})`])] });
		const method = field({ name: 'method', label: t('admin.audit.method'),
		    hint: t('admin.audit.method_hint'), attrs: { maxlength: 60 } });
		const form = el('form', { novalidate: true, 'data-test': 'audit-form' },
		    el('div', { class: 'row' }, from, to, user, method),
		    el('div', { class: 'actions' }, el('button', { type: 'submit',
			class: 'primary' }, t('admin.audit.submit'))));
		const body = el('tbody');
		const more = el('button', { type: 'button', hidden: true }, t('ui.more'));
		const count = el('p', { class: 'muted', role: 'status' });
		// Like ui.table's: the keyboard scrolls it sideways too.
		const tbl = el('div', { class: 'table-wrap', tabindex: '0', role: 'group',
		    'aria-label': t('admin.audit.title') }, el('table',
		    { 'data-test': 'audit-table' },
		    el('thead', {}, el('tr', {}, ['at', 'who', 'method', 'object',
			'summary', 'addr'].map((h) => el('th', { scope: 'col' },
			    t(`admin.audit.col.${h}`))))), body));
		root.append(el('h1', {}, t('admin.audit.title')), form, count, tbl,
		    el('div', { class: 'actions' }, more));

		let params = {};
		let cursor = null;
		let shown = 0;
		function rowOf(a) {
			return el('tr', {},
			    el('td', {}, fmt.dateTime(a.at, ZONE)),
			    el('td', {}, a.user_id ? (names.get(a.user_id) || `#${a.user_id}`)
				: t('admin.audit.daemon')),
			    el('td', { class: 'mono' }, a.method),
			    el('td', {}, a.object_type ? `${a.object_type} #${a.object_id}` : ''),
			    el('td', { class: 'mono' }, summary(a.summary)),
			    el('td', { class: 'mono' }, a.client_addr || ''));
		}
		async function page() {
			const filter = method.control.value.trim().toLowerCase();
			const r = await call('audit.list', { ...params, limit: 200,
			    ...(cursor ? { cursor } : {}) });
			const items = r.items.filter((a) => !filter ||
			    a.method.toLowerCase().includes(filter));
			body.append(...items.map(rowOf));
			shown += items.length;
			cursor = r.items.length ? r.next_cursor : null;
			more.hidden = !cursor;
			count.textContent = t('admin.audit.count', { n: shown });
		}
		async function run() {
			params = {};
			if (from.control.value)
				params.from = fmt.atZone(from.control.value, '00:00', ZONE);
			if (to.control.value)
				params.to = fmt.atZone(new Date(Date.parse(to.control.value) +
				    86400e3).toISOString().slice(0, 10), '00:00', ZONE);
			if (user.control.value)
				params.user_id = Number(user.control.value);
			cursor = null;
			shown = 0;
			clear(body);
			await page();
		}
		more.addEventListener('click', async () => {
			more.disabled = true;
			try {
				await page();
			} catch (err) {
				count.replaceWith(failure(err));
			} finally {
				more.disabled = false;
			}
		});
		submitWith(form, 'admin.audit', run);
		try {
			clear(count, loading());
			await run();
		} catch (err) {
			clear(count, failure(err));
		}
	},
};
