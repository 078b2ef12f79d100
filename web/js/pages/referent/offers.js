// Offers (#/offers): every outing with filters, seats kept live from
// /events (offer.seats_changed), booking for a person, the waiting list
// when it is full. #/offers?b=ID books for that person.

import { call, idempotencyKey, subscribe } from '../../rpc.js';
import { t } from '../../i18n.js';
import * as fmt from '../../fmt.js';
import { el, clear, field, onSubmit, showFormError, toast, loading,
	failure, errorText } from '../../ui.js';
import { personPicker, personName, noPerson } from './picker.js';
import { voucherLink } from './people.js';

const CATEGORIES = ['show', 'concert', 'cinema', 'heritage', 'museum', 'sport',
	'festival', 'workshop', 'other'];

export const offers = {
	route: '/offers',
	roles: ['referent'],
	title: 'offers.title',
	render,
};

async function render(root, ctx) {
	const picker = personPicker({ label: t('offers.for'), test: 'book-person' });
	const today = fmt.ymd(new Date());
	const from = field({ name: 'from', label: t('offers.from'), type: 'date',
		attrs: { value: today, 'data-test': 'filter-from' } });
	const to = field({ name: 'to', label: t('offers.to'), type: 'date',
		attrs: { 'data-test': 'filter-to' } });
	const cat = field({ name: 'category', label: t('offers.category'),
		options: [['', t('offers.any_category')], ...CATEGORIES.map(c => [c, t('cat.' + c)])],
		attrs: { 'data-test': 'filter-category' } });
	const city = field({ name: 'city', label: t('offers.city'),
		attrs: { maxlength: 200, 'data-test': 'filter-city' } });
	const avail = field({ name: 'available_only', label: t('offers.available_only'),
		type: 'checkbox', attrs: { checked: true, 'data-test': 'filter-available' } });
	const filters = el('form', { 'data-test': 'offer-filters', 'aria-labelledby': 'filters-title' },
		el('h2', { id: 'filters-title' }, t('offers.filters')),
		el('div', { class: 'row' }, from, to, cat, city), avail,
		el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'primary' },
			t('offers.apply'))));
	const listBox = el('div', {});
	root.append(el('h1', {}, t('offers.title')),
		el('section', { class: 'card' }, picker), filters, listBox);

	if (ctx.query.b) {
		try {
			picker.pick(await call('beneficiary.get', { beneficiary_id: Number(ctx.query.b) }));
		} catch (e) {
			// an unknown person: the picker stays empty
		}
	}

	const cards = new Map();     // offer id → card element
	let params = null;
	const query = () => {
		const p = { limit: 50 };
		if (from.control.value)
			p.from = fmt.atZone(from.control.value);
		if (to.control.value)
			p.to = fmt.atZone(fmt.addDays(to.control.value, 1));
		if (cat.control.value)
			p.category = cat.control.value;
		if (city.control.value.trim())
			p.city = city.control.value.trim();
		if (avail.control.checked)
			p.available_only = true;
		return p;
	};
	async function load(cursor) {
		if (!cursor) {
			params = query();
			cards.clear();
			clear(listBox, loading());
		}
		let res;
		try {
			res = await call('offer.list', cursor ? { ...params, cursor } : params);
		} catch (err) {
			if (cursor)
				throw err;
			clear(listBox, failure(err));
			return;
		}
		if (!cursor)
			clear(listBox, el('p', { role: 'status', class: 'muted' },
				res.items.length ? '' : t('ui.none')),
			el('ul', { class: 'cards', 'data-test': 'offers' }));
		const ul = listBox.querySelector('ul');
		listBox.querySelector('.more')?.remove();
		for (const o of res.items) {
			const c = card(o, picker);
			cards.set(o.id, c);
			ul.append(c);
		}
		if (res.next_cursor && res.items.length)
			listBox.append(el('button', { type: 'button', class: 'more',
				onclick: () => load(res.next_cursor) }, t('ui.more')));
	}
	onSubmit(filters, () => load(null));
	await load(null);

	// Seats change under our eyes: keep each card's count true.
	const stop = subscribe(['offer.seats_changed', 'offer.cancelled'], (topic, o) => {
		const c = cards.get(o.id);
		if (c)
			c.update(o);
	}, () => load(null));
	ctx.onLeave(stop);
}

function seatsText(o) {
	if (o.status === 'cancelled')
		return t('offers.cancelled');
	return t('offers.seats_left', { n: o.seats_available, total: o.seats_total });
}

function card(o, picker) {
	const seats = el('p', { class: 'seats', 'data-test': 'seats', 'aria-live': 'polite' });
	const seatsIn = field({ name: 'seats', label: t('offers.party'), type: 'number',
		required: true, attrs: { min: 1, max: o.max_per_booking, value: '1',
			inputmode: 'numeric', 'data-test': 'book-seats' } });
	const result = el('div', { role: 'status' });
	const book = el('button', { type: 'submit', class: 'primary', 'data-test': 'book' },
		t('offers.book'));
	const join = el('button', { type: 'button', 'data-test': 'waitlist-join', hidden: true },
		t('offers.join_waitlist'));
	const form = el('form', { novalidate: true }, seatsIn,
		el('div', { class: 'actions' }, book, join), result);
	const titleId = 'offer-' + o.id;
	const li = el('li', { 'data-test': 'offer', 'data-offer-id': String(o.id),
		'aria-labelledby': titleId },
		el('h3', { id: titleId }, o.title),
		el('p', {}, t('cat.' + o.category), ' · ', fmt.dateTime(o.starts_at)),
		el('p', {}, o.venue, ', ', o.city, ' · ', o.partner_name),
		seats,
		el('p', { class: 'muted' }, t('offers.deadline', { when: fmt.dateTime(o.booking_deadline) })),
		o.open_to_all === false ? el('p', { class: 'badge', 'data-test': 'offer-kept' },
			o.opens_to_all_at ? t('offers.kept_until',
				{ when: fmt.dateTime(o.opens_to_all_at) }) : t('offers.kept')) : null,
		o.accessibility ? el('p', { class: 'muted' }, t('offers.accessibility'), ' ', o.accessibility) : null,
		form, groupForm(o));
	li.update = (n) => {
		o = { ...o, ...n };
		seats.textContent = seatsText(o);
		join.hidden = !(o.status === 'published' && o.seats_available === 0);
	};
	li.update(o);

	let key = idempotencyKey();
	onSubmit(form, async () => {
		if (!picker.value)
			return showFormError(form, noPerson());
		const who = personName(picker.person);
		let bk;
		try {
			bk = await call('booking.create', { offer_id: o.id, beneficiary_id: picker.value,
				seats: Number(seatsIn.control.value) || 1, idempotency_key: key });
		} catch (err) {
			if (!['unavailable', 'timeout'].includes(err.reason))
				key = idempotencyKey();
			if (err.reason === 'sold_out')
				join.hidden = false;
			throw err;
		}
		key = idempotencyKey();
		clear(result, el('p', { 'data-test': 'booked' },
			t('offers.booked', { name: who, seats: bk.seats, code: bk.code }), ' ',
			voucherLink(bk.code)));
		toast(t('offers.booked_toast', { name: who }));
	});
	join.addEventListener('click', async () => {
		if (!picker.value)
			return showFormError(form, noPerson());
		try {
			const e = await call('waitlist.join', { offer_id: o.id,
				beneficiary_id: picker.value, seats: Number(seatsIn.control.value) || 1 });
			clear(result, el('p', {}, t('offers.joined', { name: personName(picker.person),
				n: e.position ?? '?' })));
		} catch (err) {
			showFormError(form, err);
		}
	});
	return li;
}

// A group outing (docs/booking-rules.md, "Group outings"): people added
// one by one, each with their companions, and staff seats; one call
// books them all or nobody (booking.create_group).
function groupForm(o) {
	const picker = personPicker({ label: t('group.person'), test: 'group-person' });
	const members = [];          // {person, seats field, li}
	const list = el('ul', { class: 'group-members', 'data-test': 'group-members',
		'aria-label': t('group.members') });
	const add = el('button', { type: 'button', 'data-test': 'group-add' }, t('group.add'));
	const staff = field({ name: 'staff_seats', label: t('group.staff'), type: 'number',
		hint: t('group.staff_hint'), attrs: { min: 0, max: 20, value: '1',
			inputmode: 'numeric', 'data-test': 'group-staff' } });
	const result = el('div', { role: 'status' });
	const form = el('form', { novalidate: true, 'data-test': 'group-form' },
		// API errors on the list of people land under the picker
		el('div', { 'data-field': 'beneficiary_ids' }, picker),
		el('div', { class: 'actions' }, add), list, staff,
		el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'primary',
			'data-test': 'group-book' }, t('group.book'))), result);
	form.querySelector('[data-field="beneficiary_ids"]').control = picker.control;

	add.addEventListener('click', () => {
		const b = picker.person;
		if (!b)
			return showFormError(form, noPerson());
		if (members.some(m => m.person.id === b.id))
			return showFormError(form, { reason: 'duplicate', field: 'beneficiary_id',
				data: {}, message: t('group.twice', { name: personName(b) }) },
				t('group.twice', { name: personName(b) }));
		const seats = field({ name: 'seats-' + b.id,
			label: t('group.party', { name: personName(b) }), type: 'number',
			attrs: { min: 1, max: o.max_per_booking, value: '1', inputmode: 'numeric',
				'data-test': 'group-seats' } });
		const m = { person: b, seats };
		m.li = el('li', { 'data-test': 'group-member' }, seats,
			el('button', { type: 'button', onclick: () => {
				members.splice(members.indexOf(m), 1);
				m.li.remove();
				add.focus();
			} }, t('group.remove', { name: personName(b) })));
		members.push(m);
		list.append(m.li);
		picker.reset();
		picker.control.focus();
	});

	let key = idempotencyKey();
	onSubmit(form, async () => {
		if (!members.length)
			return showFormError(form, noPerson());
		let g;
		try {
			g = await call('booking.create_group', { offer_id: o.id,
				beneficiary_ids: members.map(m => m.person.id),
				seats: members.map(m => Number(m.seats.control.value) || 1),
				staff_seats: Number(staff.control.value) || 0, idempotency_key: key });
		} catch (err) {
			if (!['unavailable', 'timeout'].includes(err.reason))
				key = idempotencyKey();
			// The refusal names the person it is about.
			const who = members.find(m => m.person.id === err.data?.beneficiary_id);
			if (who)
				return showFormError(form, { ...err, field: null },
					personName(who.person) + ' : ' + errorText(err));
			throw err;
		}
		key = idempotencyKey();
		clear(result, el('p', { 'data-test': 'group-booked' },
			t('group.booked', { n: g.members.length, staff: g.staff_seats,
				seats: g.seats, code: g.code }),
			' ', t(g.code_admits === 'everyone' ? 'group.admits_everyone'
				: 'group.admits_staff')),
			el('ul', {}, g.members.map(bk => el('li', {},
				personName(members.find(m => m.person.id === bk.beneficiary_id).person),
				' : ', bk.code, ' ', voucherLink(bk.code)))));
		members.splice(0).forEach(m => m.li.remove());
		toast(t('group.booked_toast'));
	});
	return el('details', { class: 'group', 'data-test': 'group' },
		el('summary', {}, t('group.title')), form);
}
