// The coordinator's directory: partners (#/admin/partners), structures
// (#/admin/structures) and user accounts (#/admin/users): each a list and
// a form to add one; accounts can be disabled (user.disable revokes every
// session of the user at once, docs/protocol.md).

import { call } from '../../rpc.js';
import { t } from '../../i18n.js';
import { el, clear, field, table, toast, confirmDialog, loading, failure }
    from '../../ui.js';
import * as fmt from '../../fmt.js';
import { submitWith, listAll, ZONE } from '../venue.js';

const PARTNER_KINDS = ['theatre', 'cinema', 'museum', 'heritage',
    'concert_hall', 'festival', 'sport', 'library', 'other'];
const STRUCTURE_KINDS = ['mds', 'centre_social', 'ccas', 'association',
    'housing', 'other'];
const ROLES = ['referent', 'partner', 'admin'];

function required(data, names) {
	for (const n of names)
		if (!String(data.get(n) || '').trim())
			throw Object.assign(new Error(t('err.required')),
			    { reason: 'required', field: n, data: {} });
}

// A list page with its creation form, folded until asked for.
function directoryPage({ route, title, formTitle, fields, create, load,
    headers, row, test }) {
	return {
		route,
		roles: ['admin'],
		title,
		async render(root) {
			const list = el('div', {}, loading());
			const form = el('form', { novalidate: true,
			    'data-test': `${test}-form` }, await fields(),
			    el('div', { class: 'actions' }, el('button', {
				type: 'submit', class: 'primary',
				'data-test': `${test}-submit` }, t('admin.create'))));
			// A reset puts selects back without a change event:
			// send one, so that what depends on them follows.
			form.addEventListener('reset', () => setTimeout(() =>
			    form.querySelectorAll('select').forEach((x) =>
				x.dispatchEvent(new Event('change')))));
			const details = el('details', { class: 'publish' },
			    el('summary', {}, t(formTitle)), form);
			root.append(el('h1', {}, t(title)), details, list);
			async function reload() {
				try {
					const items = await load();
					clear(list, items.length ? table(headers(),
					    items.map((x) => row(x, reload)),
					    { 'data-test': `${test}-list` })
					    : el('p', { class: 'muted' }, t('ui.none')));
				} catch (err) {
					clear(list, failure(err));
				}
			}
			submitWith(form, 'admin', async (data) => {
				const made = await create(data);
				toast(t('admin.created', { name: made.name ||
				    made.display_name || made.email }));
				form.reset();
				await reload();
			});
			await reload();
		},
	};
}

const text = (data, k) => String(data.get(k) || '').trim();

export const adminPartners = directoryPage({
	route: '/admin/partners',
	title: 'admin.partners.title',
	formTitle: 'admin.partners.new',
	test: 'partner',
	fields: () => [
	    field({ name: 'name', label: t('admin.f.name'), required: true,
		attrs: { maxlength: 200 } }),
	    field({ name: 'kind', label: t('admin.f.kind'), required: true,
		options: PARTNER_KINDS.map((k) => [k, t(`admin.pkind.${k}`)]) }),
	    field({ name: 'city', label: t('admin.f.city'), required: true,
		attrs: { maxlength: 200 } }),
	    field({ name: 'contact_email', type: 'email',
		label: t('admin.f.contact_email'), attrs: { maxlength: 200 } })],
	async create(data) {
		required(data, ['name', 'city']);
		const p = { name: text(data, 'name'), kind: data.get('kind'),
		    city: text(data, 'city') };
		if (text(data, 'contact_email'))
			p.contact_email = text(data, 'contact_email');
		return call('partner.create', p);
	},
	load: () => listAll('partner.list'),
	headers: () => [t('admin.f.name'), t('admin.f.kind'), t('admin.f.city'),
	    t('admin.f.contact_email')],
	row: (p) => [p.name, t(`admin.pkind.${p.kind}`), p.city,
	    p.contact_email || ''],
});

export const adminStructures = directoryPage({
	route: '/admin/structures',
	title: 'admin.structures.title',
	formTitle: 'admin.structures.new',
	test: 'structure',
	fields: () => [
	    field({ name: 'name', label: t('admin.f.name'), required: true,
		attrs: { maxlength: 200 } }),
	    field({ name: 'kind', label: t('admin.f.kind'), required: true,
		options: STRUCTURE_KINDS.map((k) => [k, t(`admin.skind.${k}`)]) }),
	    field({ name: 'territory', label: t('admin.f.territory'),
		required: true, hint: t('admin.h.territory'),
		attrs: { maxlength: 200 } }),
	    field({ name: 'city', label: t('admin.f.city'), required: true,
		attrs: { maxlength: 200 } }),
	    field({ name: 'timezone', label: t('admin.f.timezone'),
		hint: t('admin.h.timezone'),
		attrs: { maxlength: 64, value: 'Europe/Paris' } })],
	async create(data) {
		required(data, ['name', 'territory', 'city']);
		const p = { name: text(data, 'name'), kind: data.get('kind'),
		    territory: text(data, 'territory'), city: text(data, 'city') };
		if (text(data, 'timezone'))
			p.timezone = text(data, 'timezone');
		return call('structure.create', p);
	},
	load: () => listAll('structure.list'),
	headers: () => [t('admin.f.name'), t('admin.f.kind'),
	    t('admin.f.territory'), t('admin.f.city'), t('admin.public')],
	row: (s) => [s.name, t(`admin.skind.${s.kind}`), s.territory, s.city,
	    el('a', { href: `/public.html#${s.id}` }, t('admin.public_link'))],
});

let partnersCache = null;
let structuresCache = null;

export const adminUsers = directoryPage({
	route: '/admin/users',
	title: 'admin.users.title',
	formTitle: 'admin.users.new',
	test: 'user',
	async fields() {
		[partnersCache, structuresCache] = await Promise.all([
		    listAll('partner.list'), listAll('structure.list')]);
		const role = field({ name: 'role', label: t('admin.f.role'),
		    required: true, options: ROLES.map((r) => [r, t(`admin.role.${r}`)]),
		    attrs: { 'data-test': 'user-role' } });
		const partner = field({ name: 'partner_id', label: t('admin.f.partner'),
		    options: partnersCache.map((p) => [String(p.id), p.name]) });
		const structure = field({ name: 'structure_id',
		    label: t('admin.f.structure'),
		    options: structuresCache.map((s) => [String(s.id), s.name]) });
		// Only the one that goes with the role is shown (and sent).
		function sync() {
			partner.hidden = role.control.value !== 'partner';
			structure.hidden = role.control.value !== 'referent';
		}
		role.control.addEventListener('change', sync);
		sync();
		return [
		    field({ name: 'display_name', label: t('admin.f.display_name'),
			required: true, attrs: { maxlength: 200 } }),
		    field({ name: 'email', type: 'email', label: t('admin.f.email'),
			required: true, attrs: { maxlength: 200, autocomplete: 'off' } }),
		    role, structure, partner,
		    field({ name: 'password', type: 'password',
			label: t('admin.f.password'), required: true,
			hint: t('admin.h.password'),
			attrs: { minlength: 8, autocomplete: 'new-password' } })];
	},
	async create(data) {
		required(data, ['display_name', 'email', 'password']);
		const p = { display_name: text(data, 'display_name'),
		    email: text(data, 'email'), role: data.get('role'),
		    password: data.get('password') };
		if (p.role === 'partner')
			p.partner_id = Number(data.get('partner_id'));
		if (p.role === 'referent')
			p.structure_id = Number(data.get('structure_id'));
		return call('user.create', p);
	},
	load: () => listAll('user.list'),
	headers: () => [t('admin.f.display_name'), t('admin.f.email'),
	    t('admin.f.role'), t('admin.f.attached'), t('admin.f.created'),
	    t('admin.f.state')],
	row(u, reload) {
		const attached = u.partner_id
		    ? (partnersCache || []).find((p) => p.id === u.partner_id)
		    : (structuresCache || []).find((s) => s.id === u.structure_id);
		const state = u.enabled
		    ? el('button', { type: 'button', class: 'danger',
			'data-test': `disable-${u.id}`,
			'aria-label': t('admin.users.disable_who', { name: u.display_name }),
			onclick: async () => {
				if (!await confirmDialog(t('admin.users.disable_confirm',
				    { name: u.display_name }), t('admin.users.disable')))
					return;
				try {
					await call('user.disable', { user_id: u.id });
					toast(t('admin.users.disabled_done', { name: u.display_name }));
					await reload();
				} catch (err) {
					toast(err.message, 'error');
				}
			} }, t('admin.users.disable'))
		    : el('span', { class: 'badge bad' }, t('admin.users.disabled'));
		return [u.display_name, u.email, t(`admin.role.${u.role}`),
		    attached ? attached.name : '', fmt.date(u.created_at, ZONE), state];
	},
});
