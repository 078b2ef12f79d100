// People (#/people): find, create with consent; a person (#/people/ID):
// outings and no-shows, bookings with their vouchers, waiting lists,
// a link to book for them, and their identity key (docs/privacy.md).

import { call, batch } from '../../rpc.js';
import { t } from '../../i18n.js';
import * as fmt from '../../fmt.js';
import { el, clear, field, onSubmit, toast, confirmDialog, table,
	loading, failure, errorText, showFormError } from '../../ui.js';
import { personName } from './picker.js';

export const people = {
	route: '/people',
	roles: ['referent'],
	title: 'people.title',
	render: renderPeople,
};

export const person = {
	route: '/people/:id',
	roles: ['referent'],
	nav: false,
	title: 'person.title',
	render: renderPerson,
};

function renderPeople(root, ctx) {
	const q = field({ name: 'query', label: t('people.search'), type: 'search',
		attrs: { value: ctx.query.q || '', 'data-test': 'people-query' } });
	const results = el('div', { 'aria-live': 'polite' });
	const search = el('form', { role: 'search', 'data-test': 'people-search' },
		q, el('div', { class: 'actions' }, el('button', { type: 'submit' }, t('ui.search'))));
	onSubmit(search, async () => {
		await list(results, q.control.value.trim(), null, true);
	});
	root.append(el('h1', {}, t('people.title')), search, results, createForm(ctx));
	list(results, q.control.value.trim(), null, true);
}

async function list(box, query, cursor, fresh) {
	const params = { limit: 50 };
	if (query)
		params.query = query.slice(0, 100);
	if (cursor)
		params.cursor = cursor;
	let res;
	try {
		res = await call('beneficiary.list', params);
	} catch (err) {
		clear(box, failure(err));
		return;
	}
	if (fresh)
		clear(box, el('ul', { 'data-test': 'people-list' }));
	const ul = box.querySelector('ul');
	box.querySelector('.more')?.remove();
	for (const b of res.items)
		ul.append(el('li', {}, el('a', { href: '#/people/' + b.id }, personName(b)),
			b.birth_year ? el('span', { class: 'muted' }, ' (' + b.birth_year + ')') : null));
	if (fresh && !res.items.length)
		box.append(el('p', { class: 'muted' }, t('ui.none')));
	if (res.next_cursor && res.items.length)
		box.append(el('button', { type: 'button', class: 'more',
			onclick: () => list(box, query, res.next_cursor, false) }, t('ui.more')));
}

function createForm(ctx) {
	const num = (name, label, min, max) => field({ name, label, type: 'number',
		attrs: { min, max, inputmode: 'numeric' } });
	const consent = field({ name: 'consent', label: t('people.consent'), type: 'checkbox',
		required: true, hint: t('people.consent_hint'), attrs: { 'data-test': 'consent' } });
	const form = el('form', { novalidate: true, 'data-test': 'person-form' },
		el('div', { class: 'row' },
			field({ name: 'first_name', label: t('people.first_name'), required: true,
				attrs: { maxlength: 100, autocomplete: 'off', 'data-test': 'first-name' } }),
			field({ name: 'last_name', label: t('people.last_name'), required: true,
				attrs: { maxlength: 100, autocomplete: 'off', 'data-test': 'last-name' } })),
		el('div', { class: 'row' },
			num('birth_year', t('people.birth_year'), 1900, 2100),
			num('household_size', t('people.household_size'), 1, 30),
			field({ name: 'postal_code', label: t('people.postal_code'),
				attrs: { maxlength: 10, inputmode: 'numeric', autocomplete: 'off' } })),
		el('p', { class: 'hint' }, t('people.optional')),
		...mailFields(null),
		consent,
		el('div', { class: 'actions' },
			el('button', { type: 'submit', class: 'primary', 'data-test': 'person-submit' },
				t('people.create'))));
	onSubmit(form, async (data) => {
		const p = { consent: consent.control.checked };
		for (const k of ['first_name', 'last_name', 'postal_code'])
			if (data.get(k).trim())
				p[k] = data.get(k).trim();
		for (const k of ['birth_year', 'household_size'])
			if (data.get(k))
				p[k] = Number(data.get(k));
		if (data.get('email').trim())
			p.email = data.get('email').trim();
		p.reminders = data.get('reminders') === 'on';
		const b = await call('beneficiary.create', p);
		toast(t('people.created', { name: personName(b) }));
		ctx.navigate('/people/' + b.id);
	});
	return el('section', { class: 'card', 'aria-labelledby': 'new-person' },
		el('h2', { id: 'new-person' }, t('people.new')), form);
}

// The person's own address, and their separate consent to get their
// voucher and a reminder by e-mail (docs/mail.md).
function mailFields(b) {
	const email = field({ name: 'email', label: t('people.email'), type: 'email',
		hint: t('people.email_hint'),
		attrs: { maxlength: 254, autocomplete: 'off', value: b?.email ?? '',
			'data-test': 'person-email' } });
	const reminders = field({ name: 'reminders', label: t('people.reminders'),
		type: 'checkbox', hint: t('people.reminders_hint'),
		attrs: { 'data-test': 'person-reminders' } });
	reminders.control.checked = !!b?.reminders;
	return [email, reminders];
}

// Change the address or the consent on the person's page.
function mailForm(b, reload) {
	const form = el('form', { novalidate: true, 'data-test': 'person-mail-form' },
		...mailFields(b),
		el('div', { class: 'actions' },
			el('button', { type: 'submit', 'data-test': 'person-mail-submit' }, t('ui.save'))));
	onSubmit(form, async (data) => {
		const email = data.get('email').trim();
		await call('beneficiary.update', { beneficiary_id: b.id,
			email: email || null, reminders: data.get('reminders') === 'on' });
		toast(t('people.mail_saved'));
		await reload();
	});
	return el('section', { class: 'card', 'aria-labelledby': 'person-mail' },
		el('h2', { id: 'person-mail' }, t('people.mail_title')), form);
}

export function voucherLink(code) {
	return el('a', { href: '/voucher.html#' + encodeURIComponent(code),
		'data-test': 'voucher-link' }, t('voucher.link'));
}

async function renderPerson(root, ctx) {
	const id = Number(ctx.params.id);
	const body = el('div', {}, loading());
	root.append(body);
	let b;
	let hist;
	let wl;
	let rec;
	try {
		[b, hist, wl, rec] = await Promise.all([
			call('beneficiary.get', { beneficiary_id: id }),
			call('booking.list', { beneficiary_id: id, limit: 200 }),
			call('waitlist.list', { beneficiary_id: id, limit: 100 }),
			call('beneficiary.record', { beneficiary_id: id }),
		]);
	} catch (err) {
		clear(body, el('h1', {}, t('person.title')), failure(err));
		return;
	}
	const reload = () => { clear(root); return renderPerson(root, ctx); };
	clear(body,
		el('h1', { 'data-test': 'person-name' }, personName(b)),
		el('dl', { class: 'facts' },
			el('dt', {}, t('people.birth_year')), el('dd', {}, b.birth_year ?? '—'),
			el('dt', {}, t('people.household_size')), el('dd', {}, b.household_size ?? '—'),
			el('dt', {}, t('people.postal_code')), el('dd', {}, b.postal_code ?? '—'),
			el('dt', {}, t('person.consent_at')), el('dd', {}, fmt.dateTime(b.consent_at)),
			el('dt', {}, t('people.email')), el('dd', { 'data-test': 'person-email-shown' }, b.email ?? '—'),
			el('dt', {}, t('people.reminders_short')), el('dd', { 'data-test': 'person-reminders-shown' },
				b.reminders ? t('people.reminders_since', { when: fmt.dateTime(b.reminders_consent_at) })
					: t('people.reminders_off')),
			el('dt', {}, t('person.outings')), el('dd', { 'data-test': 'outings' }, String(b.outings_12m)),
			el('dt', {}, t('person.no_shows')), el('dd', { 'data-test': 'no-shows' }, String(b.no_shows_12m))),
		el('p', {}, el('a', { href: '#/offers?b=' + b.id, 'data-test': 'book-for' },
			t('person.book_for', { name: b.first_name }))),
		record(rec),
		bookings(t('person.upcoming'), b.upcoming, reload, 'upcoming'),
		await waitlist(wl.items, reload),
		bookings(t('person.history'), hist.items.filter(x =>
			!b.upcoming.some(u => u.id === x.id)), reload, 'history'),
		mailForm(b, reload), identity(b, reload));
}

// What the draw reads of the person (beneficiary.record), so that the
// referent can tell them why they come first or last.
function record(r) {
	const n = (v) => String(v);
	return el('section', { class: 'card', 'data-test': 'record', 'aria-labelledby': 'record-h' },
		el('h2', { id: 'record-h' }, t('person.record')),
		el('p', { class: 'muted' }, t('person.record_window',
			{ from: fmt.dateTime(r.window_from), to: fmt.dateTime(r.window_to) })),
		el('dl', { class: 'facts' },
			el('dt', {}, t('person.record_attended')), el('dd', {}, n(r.attended)),
			el('dt', {}, t('person.record_no_shows')), el('dd', {}, n(r.no_shows)),
			el('dt', {}, t('person.record_withdrawn')), el('dd', {}, n(r.withdrawn_late)),
			el('dt', {}, t('person.record_score')),
			el('dd', { 'data-test': 'record-score' }, n(r.score))),
		el('p', {}, t('person.record_explain', { ns: n(r.no_show_weight),
			wl: n(r.withdrawn_late_weight) })));
}

// A late withdrawal: a reason from the list, then booking.withdraw (a
// plain cancellation before the deadline).
function withdrawForm(bk, reload, err) {
	const id = 'wr-' + bk.id;
	const select = el('select', { id, 'data-test': 'withdraw-reason' },
		...['illness', 'transport', 'family', 'other'].map(r =>
			el('option', { value: r }, t('withdraw.' + r))));
	return el('details', { class: 'withdraw' },
		el('summary', {}, t('person.withdraw')),
		el('p', { class: 'muted' }, t('person.withdraw_help')),
		el('label', { for: id }, t('person.withdraw_reason')), ' ', select, ' ',
		el('button', { type: 'button', class: 'danger', 'data-test': 'withdraw-booking',
			onclick: async () => {
				try {
					const r = await call('booking.withdraw',
						{ booking_id: bk.id, reason: select.value });
					toast(t(r.status === 'withdrawn_late'
						? 'person.withdrawn' : 'person.cancelled'));
					await reload();
				} catch (e) {
					err.textContent = errorText(e, 'withdraw');
				}
			} }, t('person.withdraw_submit')));
}

// The identity key: with the person's consent, the names and birth date
// typed here become a key in the server; the page never learns whether
// another structure follows the person.
function identity(b, reload) {
	const set = !!b.identity_set_at;
	const consent = field({ name: 'consent', label: t('identity.consent'), type: 'checkbox',
		required: true, hint: t('identity.consent_hint'), attrs: { 'data-test': 'identity-consent' } });
	const form = el('form', { novalidate: true, 'data-test': 'identity-form' },
		el('div', { class: 'row' },
			field({ name: 'last_name', label: t('people.last_name'), required: true,
				attrs: { maxlength: 100, autocomplete: 'off', value: b.last_name } }),
			field({ name: 'first_name', label: t('people.first_name'), required: true,
				attrs: { maxlength: 100, autocomplete: 'off', value: b.first_name } }),
			field({ name: 'birth_date', label: t('identity.birth_date'), type: 'date',
				required: true, hint: t('identity.birth_date_hint'),
				attrs: { 'data-test': 'identity-birth-date' } })),
		consent,
		el('div', { class: 'actions' },
			el('button', { type: 'submit', class: 'primary', 'data-test': 'identity-submit' },
				t(set ? 'identity.replace' : 'identity.record'))));
	onSubmit(form, async (data) => {
		try {
			await call('beneficiary.set_identity', { beneficiary_id: b.id,
				last_name: data.get('last_name').trim(), first_name: data.get('first_name').trim(),
				birth_date: data.get('birth_date'), consent: consent.control.checked });
		} catch (e) {
			if (!e || !e.reason)
				throw e;
			showFormError(form, e, errorText(e, 'identity'));
			return;
		}
		toast(t('identity.recorded'));
		await reload();
	});
	const err = el('p', { class: 'error', role: 'alert' });
	const clearButton = set ? el('button', { type: 'button', class: 'danger',
		'data-test': 'identity-clear', onclick: async () => {
			if (!await confirmDialog(t('identity.clear_confirm'), t('identity.clear')))
				return;
			try {
				await call('beneficiary.clear_identity', { beneficiary_id: b.id });
				toast(t('identity.cleared'));
				await reload();
			} catch (e) {
				err.textContent = errorText(e);
			}
		} }, t('identity.clear')) : null;
	return el('section', { class: 'card', 'aria-labelledby': 'identity-h', 'data-test': 'identity' },
		el('h2', { id: 'identity-h' }, t('identity.title')),
		el('p', {}, t('identity.explain')),
		el('p', { 'data-test': 'identity-state' }, set
			? t('identity.set_on', { when: fmt.dateTime(b.identity_set_at) })
			: t('identity.none')),
		clearButton, err, form);
}

function bookings(title, items, reload, test) {
	const row = (bk) => {
		const err = el('p', { class: 'error', role: 'alert' });
		const live = bk.status === 'confirmed' && Date.parse(bk.starts_at) > Date.now();
		return el('tr', { 'data-test': 'booking-row' },
			el('td', {}, bk.offer_title),
			el('td', {}, fmt.dateTime(bk.starts_at)),
			el('td', {}, bk.venue + ', ' + bk.city),
			el('td', {}, String(bk.seats)),
			el('td', {}, t('status.' + bk.status)),
			el('td', {}, live ? [voucherLink(bk.code), ' ',
				el('button', { type: 'button', class: 'danger', 'data-test': 'cancel-booking',
					onclick: async () => {
						if (!await confirmDialog(t('person.cancel_confirm',
							{ title: bk.offer_title }), t('person.cancel')))
							return;
						try {
							await call('booking.cancel', { booking_id: bk.id });
							toast(t('person.cancelled'));
							await reload();
						} catch (e) {
							err.textContent = errorText(e, 'cancel');
						}
					} }, t('person.cancel')), ' ', withdrawForm(bk, reload, err), err] : '—'));
	};
	return el('section', { class: 'card', 'data-test': test },
		el('h2', {}, title),
		items.length ? table([t('offers.offer'), t('offers.when'), t('offers.where'),
			t('offers.seats'), t('person.status'), t('person.actions')], items.map(row), {}, title)
			: el('p', { class: 'muted' }, t('ui.none')));
}

async function waitlist(entries, reload) {
	const live = entries.filter(e => ['waiting', 'offered'].includes(e.status));
	if (!live.length)
		return null;
	const got = await batch(live.map(e => ['offer.get', { offer_id: e.offer_id }]));
	const row = (e, i) => {
		const o = got[i] && got[i].id ? got[i] : null;
		const err = el('p', { class: 'error', role: 'alert' });
		const act = (label, method, done) => el('button', { type: 'button',
			'data-test': 'wl-' + method.split('.')[1], onclick: async () => {
				try {
					await call(method, { entry_id: e.id });
					toast(done);
					await reload();
				} catch (x) {
					err.textContent = errorText(x);
				}
			} }, label);
		return el('tr', {},
			el('td', {}, o ? o.title : t('desk.offer_n', { id: e.offer_id })),
			el('td', {}, o ? fmt.dateTime(o.starts_at) : ''),
			el('td', {}, String(e.seats)),
			el('td', {}, t('wl.' + e.status),
				e.position ? ' (' + t('wl.position', { n: e.position }) + ')' : '',
				e.position && e.score != null ? ' – ' + t('wl.score', { score: e.score,
					attended: e.attended, no_shows: e.no_shows }) : '',
				e.expires_at ? ' – ' + t('wl.until', { when: fmt.dateTime(e.expires_at) }) : ''),
			el('td', {}, e.status === 'offered'
				? act(t('wl.accept'), 'waitlist.accept', t('wl.accepted_toast')) : null, ' ',
			act(t('wl.leave'), 'waitlist.leave', t('wl.left_toast')), err));
	};
	return el('section', { class: 'card', 'data-test': 'waitlist' },
		el('h2', {}, t('person.waitlist')),
		table([t('offers.offer'), t('offers.when'), t('offers.seats'), t('person.status'),
			t('person.actions')], live.map(row), {}, t('person.waitlist')));
}
