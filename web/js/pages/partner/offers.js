// The partner's offers (#/partner/offers): what it donated, seats taken
// and left, live; publishing a new offer, once or repeated every week or
// month (docs/series.md); one offer's page to edit it, change its seats
// or cancel it, for a date of a series also with the following ones
// (#/partner/offers/:id); its guest list, printable
// (#/partner/offers/:id/guests); what was asked of it, in numbers
// (offer.demand, docs/reports.md "Demand").

import { call, subscribe } from '../../rpc.js';
import { t } from '../../i18n.js';
import { el, clear, field, table, toast, confirmDialog, loading, failure }
    from '../../ui.js';
import * as fmt from '../../fmt.js';
import { toLocalInput, fromLocalInput, submitWith, listAll, ZONE }
    from '../venue.js';

const CATEGORIES = ['show', 'concert', 'cinema', 'heritage', 'museum',
    'sport', 'festival', 'workshop', 'other'];
const DELIVERY = ['guest_list', 'e_ticket', 'pickup'];
const REPEAT = ['once', 'weekly', 'monthly'];
// By getUTCDay(): Sunday first.
const WEEKDAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday',
    'friday', 'saturday'];

// The offer's fields, empty or filled from an offer; publish adds seats.
function offerFields(o, isNew) {
	const v = (k) => (o && o[k] !== null && o[k] !== undefined ? o[k] : '');
	const f = (name, opts) => field({ name, label: t(`partner.f.${name}`),
	    ...opts, attrs: { 'data-test': `offer-${name}`, ...(opts.attrs || {}) } });
	const list = [
	    f('title', { required: true, attrs: { maxlength: 200, value: v('title') } }),
	    f('category', { required: true, options: CATEGORIES.map((c) =>
		[c, t(`cat.${c}`)]) }),
	    f('venue', { required: true, attrs: { maxlength: 200, value: v('venue') } }),
	    f('address', { hint: t('partner.h.address'),
		attrs: { maxlength: 300, value: v('address'), autocomplete: 'off' } }),
	    f('city', { required: true, attrs: { maxlength: 200, value: v('city') } }),
	    f('starts_at', { type: 'datetime-local', required: true,
		hint: t('partner.h.paris'),
		attrs: { value: toLocalInput(o && o.starts_at) } }),
	    f('ends_at', { type: 'datetime-local',
		attrs: { value: toLocalInput(o && o.ends_at) } }),
	];
	if (isNew)
		list.push(
		    f('repeat', { hint: t('partner.h.repeat'), options: REPEAT.map((r) =>
			[r, t(`partner.repeat.${r}`)]) }),
		    f('until_date', { type: 'date', hint: t('partner.h.until_date') }),
		    f('seats', { type: 'number', required: true,
			attrs: { min: 1, max: 100000, inputmode: 'numeric' } }));
	list.push(
	    f('max_per_booking', { type: 'number', hint: t('partner.h.max_per_booking'),
		attrs: { min: 1, max: 100, inputmode: 'numeric',
		    value: v('max_per_booking') || 4 } }),
	    f('booking_deadline', { type: 'datetime-local',
		hint: t('partner.h.booking_deadline'),
		attrs: { value: toLocalInput(o && o.booking_deadline) } }),
	    f('delivery', { options: DELIVERY.map((d) =>
		[d, t(`partner.delivery.${d}`)]) }),
	    // what a group outing's code admits (docs/booking-rules.md)
	    f('group_codes', { options: ['person', 'group'].map((g) =>
		[g, t(`partner.gc.${g}`)]) }),
	    f('description', { type: 'textarea', attrs: { maxlength: 4000, rows: 4 } }),
	    f('accessibility', { type: 'textarea', hint: t('partner.h.accessibility'),
		attrs: { maxlength: 1000, rows: 2 } }));
	for (const w of list) {
		const name = w.dataset.field;
		if (o && (w.control.tagName === 'SELECT' ||
		    w.control.tagName === 'TEXTAREA'))
			w.control.value = v(name);
	}
	return list;
}

// The form's values as offer.publish / offer.update params. For an update
// only what changed is sent, and a cleared optional field is sent as null.
function offerParams(data, before) {
	const p = {};
	const text = (k) => (data.get(k) || '').trim();
	p.title = text('title');
	p.category = data.get('category');
	p.venue = text('venue');
	p.address = text('address') || null;
	p.city = text('city');
	p.starts_at = fromLocalInput(data.get('starts_at'));
	p.ends_at = fromLocalInput(data.get('ends_at'));
	if (data.has('seats'))
		p.seats = Number(data.get('seats'));
	p.max_per_booking = Number(data.get('max_per_booking') || 4);
	const dl = fromLocalInput(data.get('booking_deadline'));
	if (dl)
		p.booking_deadline = dl;
	p.delivery = data.get('delivery');
	p.group_codes = data.get('group_codes');
	p.description = text('description') || null;
	p.accessibility = text('accessibility') || null;
	if (!before) {
		for (const k of ['ends_at', 'address', 'description', 'accessibility'])
			if (p[k] === null)
				delete p[k];
		return p;
	}
	const changed = {};
	for (const [k, val] of Object.entries(p))
		if ((before[k] ?? null) !== val)
			changed[k] = val;
	return changed;
}

// A repeated offer as offer.publish_series params: the first date gives
// the rule (its weekday, its rank in the month, its Paris wall-clock
// times), the deadline given its lead in hours.
function seriesParams(data) {
	const p = offerParams(data, null);
	const start = data.get('starts_at');	// '2027-03-03T14:00', Paris
	const day = start.slice(0, 10);
	const [y, m, d] = day.split('-').map(Number);
	const s = { ...p, weekday: WEEKDAYS[new Date(Date.UTC(y, m - 1, d)).getUTCDay()],
	    start_time: start.slice(11, 16), from_date: day,
	    until_date: data.get('until_date') };
	if (data.get('repeat') === 'monthly')
		s.nth = Math.ceil(d / 7);
	if (data.get('ends_at'))
		s.end_time = data.get('ends_at').slice(11, 16);
	if (p.booking_deadline)
		s.deadline_hours = leadHours(p.starts_at, p.booking_deadline);
	delete s.starts_at;
	delete s.ends_at;
	delete s.booking_deadline;
	return s;
}

function leadHours(starts, deadline) {
	return Math.min(720, Math.max(0,
	    Math.round((Date.parse(starts) - Date.parse(deadline)) / 3600e3)));
}

// offer.update params for a date and the following ones of its series:
// instants name one date, so what changed of them is sent as wall clock
// (each offer keeps its own date) and as a deadline's lead.
function followingParams(p, data) {
	const q = { ...p };
	if ('starts_at' in q)
		q.start_time = data.get('starts_at').slice(11, 16);
	if ('ends_at' in q)
		q.end_time = q.ends_at ? data.get('ends_at').slice(11, 16) : null;
	if ('booking_deadline' in q)
		q.deadline_hours = leadHours(fromLocalInput(data.get('starts_at')),
		    q.booking_deadline);
	delete q.starts_at;
	delete q.ends_at;
	delete q.booking_deadline;
	return q;
}

// "This date" or "this date and the following": for a date of a series.
function scopeField(o, hint) {
	if (!o.series_id)
		return null;
	return field({ name: 'scope', label: t('partner.f.scope'), hint,
	    options: [['this', t('partner.scope.this')],
		['following', t('partner.scope.following')]],
	    attrs: { 'data-test': 'offer-scope' } });
}

// Keeping the offer for some structures or territories until it opens
// (docs/booking-rules.md, "Targeted offers"): two groups of check boxes,
// from the structures every user may list, and the opening: at a date, or
// a number of hours before the show (which follows the show when it
// moves, and is the only way a series can say it).
function checkGroup(name, legend, hint, choices, picked) {
	const id = `${name}-${Math.random().toString(36).slice(2, 8)}`;
	const boxes = choices.map(([value, text], i) => {
		const box = el('input', { type: 'checkbox', name, value: String(value),
		    id: `${id}-${i}`, 'aria-describedby': `${id}-hint ${id}-err` });
		box.checked = picked.includes(value);
		return el('div', { class: 'field check' }, box,
		    el('label', { for: `${id}-${i}` }, text));
	});
	const wrap = el('fieldset', { class: 'targets', 'data-field': name,
	    'data-test': `offer-${name}` },
	    el('legend', {}, legend),
	    el('p', { class: 'hint', id: `${id}-hint` }, hint),
	    boxes.length ? boxes : el('p', { class: 'muted' }, t('partner.targets.none')),
	    el('p', { class: 'error', id: `${id}-err` }));
	wrap.control = wrap.querySelector('input') || wrap;
	return wrap;
}

function targetFields(o, structures) {
	const territories = [...new Set(structures.map((s) => s.territory))]
	    .sort((a, b) => a.localeCompare(b, 'fr'));
	const how = field({ name: 'opens_how', label: t('partner.f.opens_how'),
	    options: [['at', t('partner.opens.at')],
		['hours', t('partner.opens.hours')]],
	    attrs: { 'data-test': 'offer-opens_how' } });
	how.control.value = o && o.opens_to_all_hours ? 'hours' : 'at';
	const opens = field({ name: 'opens_to_all_at', type: 'datetime-local',
	    label: t('partner.f.opens_to_all_at'), hint: t('partner.h.opens_to_all_at'),
	    attrs: { value: toLocalInput(o && o.opens_to_all_at),
		'data-test': 'offer-opens_to_all_at' } });
	const hours = field({ name: 'opens_to_all_hours', type: 'number',
	    label: t('partner.f.opens_to_all_hours'),
	    hint: t('partner.h.opens_to_all_hours'),
	    attrs: { min: 1, max: 2160, inputmode: 'numeric',
		value: (o && o.opens_to_all_hours) || '',
		'data-test': 'offer-opens_to_all_hours' } });
	return el('details', { class: 'targets', open: !!(o && !o.open_to_all) },
	    el('summary', {}, t('partner.targets.title')),
	    el('p', { class: 'hint' }, t('partner.h.targets')),
	    checkGroup('target_territories', t('partner.f.target_territories'),
		t('partner.h.target_territories'), territories.map((x) => [x, x]),
		(o && o.target_territories) || []),
	    checkGroup('target_structure_ids', t('partner.f.target_structure_ids'),
		t('partner.h.target_structure_ids'),
		structures.map((s) => [s.id, `${s.name} (${s.territory})`]),
		(o && o.target_structure_ids) || []),
	    how, opens, hours);
}

// Shows the opening's date or its hours, as chosen; a series has no one
// date, so it opens only by hours.
function syncOpening(form) {
	const how = form.elements.opens_how;
	const series = form.elements.repeat && form.elements.repeat.value !== 'once';
	how.querySelector('option[value="at"]').disabled = series;
	if (series)
		how.value = 'hours';
	form.querySelector('[data-field="opens_to_all_at"]').hidden =
	    how.value !== 'at';
	form.querySelector('[data-field="opens_to_all_hours"]').hidden =
	    how.value !== 'hours';
}

function watchOpening(form) {
	form.addEventListener('change', (ev) => {
		if (ev.target.name === 'opens_how' || ev.target.name === 'repeat')
			syncOpening(form);
	});
	syncOpening(form);
}

// The targets of the form as params: for an update, only if changed.
function targetParams(data, before) {
	const terr = data.getAll('target_territories').sort();
	const ids = data.getAll('target_structure_ids').map(Number)
	    .sort((a, b) => a - b);
	// only the way chosen counts; the other field may keep a value
	const byHours = data.get('opens_how') === 'hours';
	const atInput = byHours ? '' : data.get('opens_to_all_at') || '';
	const opens = fromLocalInput(atInput);
	const hours = byHours && data.get('opens_to_all_hours') ?
	    Number(data.get('opens_to_all_hours')) : null;
	const p = {};
	if (!before) {
		if (terr.length)
			p.target_territories = terr;
		if (ids.length)
			p.target_structure_ids = ids;
		if (hours)
			p.opens_to_all_hours = hours;
		else if (opens)
			p.opens_to_all_at = opens;
		return p;
	}
	const same = (a, b) => JSON.stringify([...a].sort()) ===
	    JSON.stringify([...b].sort());
	if (!same(terr, before.target_territories || []))
		p.target_territories = terr;
	if (!same(ids, before.target_structure_ids || []))
		p.target_structure_ids = ids;
	// Setting one clears the other (docs/booking-rules.md): a lead is
	// sent as such, anything else as the instant (null: kept to the end).
	if (hours) {
		if (hours !== before.opens_to_all_hours)
			p.opens_to_all_hours = hours;
	} else if (before.opens_to_all_hours ||
	    toLocalInput(before.opens_to_all_at) !== atInput) {
		p.opens_to_all_at = opens;
	}
	return p;
}

// "Kept for …, open to everyone from …": for the offer's facts.
function targetText(o) {
	const who = [...(o.target_territories || [])];
	if ((o.target_structure_ids || []).length)
		who.push(t('partner.targets.structures',
		    { n: o.target_structure_ids.length }));
	if (!who.length)
		return t('partner.targets.everyone');
	const base = t('partner.targets.kept', { who: who.join(', ') });
	if (!o.opens_to_all_at)
		return base;
	const text = t(o.open_to_all ? 'partner.targets.opened' :
	    'partner.targets.until',
	    { base, when: fmt.dateTime(o.opens_to_all_at, ZONE) });
	return o.opens_to_all_hours ?
	    t('partner.targets.lead', { text, n: o.opens_to_all_hours }) : text;
}

function checkRequired(form, data, names) {
	for (const n of names) {
		if (!String(data.get(n) || '').trim()) {
			const err = new Error(t('err.required'));
			Object.assign(err, { reason: 'required', field: n, data: {} });
			throw err;
		}
	}
}

function seatCells(o) {
	return [
	    el('span', { 'data-test': 'seats-taken' }, String(o.seats_taken)),
	    el('span', { 'data-test': 'seats-left' }, String(o.seats_available)),
	];
}

function statusBadge(o) {
	if (o.status === 'cancelled')
		return el('span', { class: 'badge bad' }, t('status.cancelled'));
	if (new Date(o.starts_at) < new Date())
		return el('span', { class: 'badge' }, t('partner.past'));
	return el('span', { class: 'badge ok' }, t('status.published'));
}

function offerRow(o) {
	const tr = el('tr', { 'data-offer': o.id },
	    el('td', {}, el('a', { href: `#/partner/offers/${o.id}` }, o.title)),
	    el('td', {}, fmt.dateTime(o.starts_at, ZONE)),
	    el('td', { class: 'num' }, String(o.seats_total)),
	    el('td', { class: 'num' }, seatCells(o)[0]),
	    el('td', { class: 'num' }, seatCells(o)[1]),
	    el('td', {}, statusBadge(o)),
	    el('td', {}, el('a', { href: `#/partner/offers/${o.id}/guests` },
		t('partner.guests.link'))));
	return tr;
}

function offersTable(items) {
	return table([t('partner.f.title'), t('partner.col.when'),
	    t('partner.col.seats'), t('partner.col.taken'), t('partner.col.left'),
	    t('partner.col.status'), t('partner.col.guests')],
	    items.map(offerRow), { 'data-test': 'partner-offers' });
}

export const partnerOffers = {
	route: '/partner/offers',
	roles: ['partner'],
	title: 'partner.offers.title',
	async render(root, ctx) {
		const list = el('div', {}, loading());
		const structures = await listAll('structure.list').catch(() => []);
		const form = el('form', { class: 'offer-form', novalidate: true,
		    'data-test': 'publish-form' },
		    offerFields(null, true), targetFields(null, structures),
		    el('div', { class: 'actions' }, el('button', { type: 'submit',
			class: 'primary', 'data-test': 'publish-submit' },
			t('partner.publish.submit'))));
		const details = el('details', { class: 'publish' },
		    el('summary', {}, t('partner.publish.title')), form);
		watchOpening(form);
		root.append(el('h1', {}, t('partner.offers.title')), details,
		    el('h2', {}, t('partner.offers.upcoming')), list);

		const since = new Date(Date.now() - 30 * 86400e3).toISOString()
		    .replace(/\.\d{3}Z$/, 'Z');
		let items = [];
		async function reload() {
			try {
				items = await listAll('offer.list', {
				    partner_id: ctx.user.partner_id, from: since }, 1000);
				clear(list, items.length ? offersTable(items) :
				    el('p', { class: 'muted' }, t('partner.offers.none')));
			} catch (err) {
				clear(list, failure(err));
			}
		}
		submitWith(form, 'partner', async (data) => {
			checkRequired(form, data, ['title', 'venue', 'city',
			    'starts_at', 'seats']);
			if (data.get('repeat') !== 'once') {
				checkRequired(form, data, ['until_date']);
				const r = await call('offer.publish_series', {
				    ...seriesParams(data), ...targetParams(data, null) });
				toast(t('partner.publish.series_done', {
				    title: r.items[0].title, n: r.items.length }));
			} else {
				const o = await call('offer.publish', {
				    ...offerParams(data, null), ...targetParams(data, null) });
				toast(t('partner.publish.done', { title: o.title }));
			}
			form.reset();
			syncOpening(form);
			details.open = false;
			await reload();
		});
		// Seats move as referents book: keep the counts current.
		ctx.onLeave(subscribe(['offer.seats_changed', 'offer.published',
		    'offer.cancelled'], (topic, o) => {
			if (!o || o.partner_id !== ctx.user.partner_id)
				return;
			const i = items.findIndex((x) => x.id === o.id);
			if (i < 0) {
				reload();
				return;
			}
			items[i] = { ...items[i], ...o };
			const row = list.querySelector(`tr[data-offer="${o.id}"]`);
			if (row)
				row.replaceWith(offerRow(items[i]));
		}, reload));
		await reload();
	},
};

// The demand for one offer: numbers, never a person.
const DEMAND = ['wishes', 'waiting', 'seats_booked', 'seats_requested',
    'unmet_seats', 'no_shows'];

async function showDemand(box, id) {
	let d;
	try {
		d = (await call('offer.demand', { offer_id: id })).items[0];
	} catch (err) {
		clear(box, el('h2', {}, t('partner.demand.title')), failure(err));
		return;
	}
	const dl = el('dl', { class: 'facts' });
	for (const k of DEMAND) {
		if (d[k] === null || d[k] === undefined)
			continue;
		dl.append(el('dt', {}, t(`partner.demand.${k}`)),
		    el('dd', { 'data-test': `demand-${k}` }, String(d[k])));
	}
	clear(box, el('h2', {}, t('partner.demand.title')),
	    el('p', { class: 'hint' }, t('partner.demand.hint')), dl);
}

export const partnerOffer = {
	route: '/partner/offers/:id',
	roles: ['partner', 'admin'],
	nav: false,
	title: 'partner.offer.title',
	async render(root, ctx) {
		const id = Number(ctx.params.id);
		root.append(loading());
		let o;
		try {
			o = await call('offer.get', { offer_id: id });
		} catch (err) {
			clear(root, el('h1', {}, t('partner.offer.title')), failure(err));
			return;
		}
		const facts = el('dl', { class: 'facts', 'data-test': 'offer-facts' });
		function showFacts() {
			clear(facts,
			    el('dt', {}, t('partner.col.when')),
			    el('dd', {}, fmt.range(o.starts_at, o.ends_at, ZONE)),
			    el('dt', {}, t('partner.col.seats')),
			    el('dd', {}, String(o.seats_total)),
			    el('dt', {}, t('partner.col.taken')),
			    el('dd', { 'data-test': 'seats-taken' }, String(o.seats_taken)),
			    el('dt', {}, t('partner.col.held')),
			    el('dd', {}, String(o.seats_held)),
			    el('dt', {}, t('partner.col.left')),
			    el('dd', { 'data-test': 'seats-left' }, String(o.seats_available)),
			    el('dt', {}, t('partner.col.status')),
			    el('dd', {}, statusBadge(o),
				o.cancel_reason ? ` ${o.cancel_reason}` : ''),
			    el('dt', {}, t('partner.targets.title')),
			    el('dd', { 'data-test': 'offer-targets' }, targetText(o)));
		}
		showFacts();
		const demand = el('section', { class: 'card', 'data-test': 'offer-demand' },
		    el('h2', {}, t('partner.demand.title')), loading());
		const head = [el('h1', {}, o.title), facts,
		    el('p', {}, el('a', { href: `#/partner/offers/${id}/guests`,
			'data-test': 'guests-link' }, t('partner.guests.link'))), demand];
		clear(root, head);
		showDemand(demand, id);
		if (o.status === 'cancelled')
			return;

		const structures = await listAll('structure.list').catch(() => []);
		const edit = el('form', { class: 'offer-form', novalidate: true,
		    'data-test': 'edit-form' }, offerFields(o, false),
		    scopeField(o, t('partner.h.scope_edit')),
		    targetFields(o, structures),
		    el('div', { class: 'actions' }, el('button', { type: 'submit',
			class: 'primary' }, t('ui.save'))));
		watchOpening(edit);
		submitWith(edit, 'partner', async (data) => {
			checkRequired(edit, data, ['title', 'venue', 'city', 'starts_at']);
			const p = { ...offerParams(data, o), ...targetParams(data, o) };
			if (Object.keys(p).length === 0) {
				toast(t('partner.edit.nothing'));
				return;
			}
			if (data.get('scope') === 'following') {
				const r = await call('offer.update', { offer_id: id,
				    scope: 'following', ...followingParams(p, data) });
				o = r;
				toast(t('partner.edit.done_series', { n: r.items.length }));
			} else {
				o = await call('offer.update', { offer_id: id, ...p });
				toast(t('partner.edit.done'));
			}
			showFacts();
		});

		const seatsForm = el('form', { novalidate: true, 'data-test': 'seats-form' },
		    el('div', { class: 'row' }, field({ name: 'seats', type: 'number',
			label: t('partner.f.seats'), required: true,
			hint: t('partner.h.set_seats'), attrs: { min: 1, max: 100000,
			    value: o.seats_total, inputmode: 'numeric' } }),
			el('button', { type: 'submit' }, t('partner.seats.submit'))));
		submitWith(seatsForm, 'partner', async (data) => {
			o = await call('offer.set_seats', { offer_id: id,
			    seats: Number(data.get('seats')) });
			showFacts();
			toast(t('partner.seats.done', { n: o.seats_total }));
		});

		const cancelForm = el('form', { novalidate: true, 'data-test': 'cancel-form' },
		    field({ name: 'reason', type: 'textarea', required: true,
			label: t('partner.f.reason'), hint: t('partner.h.reason'),
			attrs: { maxlength: 500, rows: 2 } }),
		    scopeField(o, null),
		    el('div', { class: 'actions' }, el('button', { type: 'submit',
			class: 'danger' }, t('partner.cancel.submit'))));
		submitWith(cancelForm, 'partner', async (data) => {
			checkRequired(cancelForm, data, ['reason']);
			const following = data.get('scope') === 'following';
			if (!await confirmDialog(following ?
			    t('partner.cancel.confirm_series') :
			    t('partner.cancel.confirm', { n: o.seats_taken }),
			    t('partner.cancel.submit'), t('ui.cancel')))
				return;
			const r = await call('offer.cancel', { offer_id: id,
			    reason: data.get('reason').trim(),
			    ...(following ? { scope: 'following' } : {}) });
			toast(following ? t('partner.cancel.done_series', {
			    dates: r.items.length, n: r.bookings_cancelled }) :
			    t('partner.cancel.done', { n: r.bookings_cancelled }));
			ctx.rerender();
		});

		root.append(
		    el('section', { class: 'card' }, el('h2', {}, t('partner.edit.title')), edit),
		    el('section', { class: 'card' }, el('h2', {}, t('partner.seats.title')), seatsForm),
		    el('section', { class: 'card' }, el('h2', {}, t('partner.cancel.title')), cancelForm));
	},
};

export const partnerGuests = {
	route: '/partner/offers/:id/guests',
	roles: ['partner', 'admin'],
	nav: false,
	title: 'partner.guests.title',
	async render(root, ctx) {
		const id = Number(ctx.params.id);
		root.append(loading());
		let r;
		try {
			r = await call('offer.guest_list', { offer_id: id });
		} catch (err) {
			clear(root, el('h1', {}, t('partner.guests.title')), failure(err));
			return;
		}
		const o = r.offer;
		const live = r.items.filter((g) => g.status !== 'cancelled' &&
		    g.status !== 'cancelled_by_partner');
		const total = live.reduce((n, g) => n + g.seats, 0);
		const came = live.filter((g) => g.status === 'attended')
		    .reduce((n, g) => n + g.seats, 0);
		// After the start, a person seen coming in late without a scan is
		// ticked here and recorded as attended when attendance is closed.
		const started = new Date(o.starts_at) < new Date() && o.status !== 'cancelled';
		const late = (g) => started && (g.status === 'confirmed' || g.status === 'no_show')
		    ? el('input', { type: 'checkbox', class: 'no-print', 'data-late': String(g.booking_id),
			'data-test': 'arrived-late',
			'aria-label': t('partner.close.late_for', { holder: g.holder }) })
		    : el('span', { 'aria-hidden': 'true' }, g.status === 'attended' ? '☑' : '☐');
		const rows = r.items.map((g) => el('tr', { class: `g-${g.status}` },
		    el('td', { class: 'box' }, late(g)),
		    el('td', {}, g.holder),
		    el('td', { class: 'num' }, String(g.seats)),
		    el('td', { class: 'mono' }, g.code),
		    el('td', {}, g.structure),
		    el('td', {}, t(`status.${g.status}`))));
		const actions = el('div', { class: 'actions no-print' },
		    el('button', { type: 'button', class: 'primary', 'data-test': 'print',
			onclick: () => window.print() }, t('partner.guests.print')),
		    el('a', { href: `#/partner/offers/${id}` }, t('partner.guests.back')));
		if (started)
			actions.append(el('button', { type: 'button', 'data-test': 'close-attendance',
			    onclick: async () => {
				    const ids = [...root.querySelectorAll('input[data-late]:checked')]
					.map((x) => Number(x.dataset.late));
				    if (!await confirmDialog(t('partner.close.confirm')))
					    return;
				    try {
					    const c = await call('offer.close_attendance',
						{ offer_id: id, arrived_late: ids });
					    toast(t('partner.close.done', { n: c.no_show }) +
						(c.marked_arrived_late
						    ? ' ' + t('partner.close.late_done', { n: c.marked_arrived_late })
						    : ''));
					    ctx.rerender();
				    } catch (err) {
					    toast(err.message, 'error');
				    }
			    } }, t('partner.close.submit')));
		clear(root, el('div', { class: 'guest-list' },
		    el('h1', {}, t('partner.guests.title'), ' ',
			el('span', { class: 'sub' }, o.title)),
		    el('p', { class: 'lead' }, fmt.range(o.starts_at, o.ends_at, ZONE),
			' · ', o.venue, ', ', o.city),
		    el('p', { 'data-test': 'guest-totals' }, t('partner.guests.totals',
			{ bookings: live.length, seats: total, came })),
		    actions,
		    started ? el('p', { class: 'muted no-print' }, t('partner.close.late_help')) : null,
		    r.items.length ? table([t('partner.col.came'), t('partner.col.holder'),
			t('partner.col.seats'), t('partner.col.code'),
			t('partner.col.structure'), t('partner.col.status')], rows,
			{ 'data-test': 'guest-list', class: 'guests' })
			: el('p', { class: 'muted' }, t('partner.guests.none')),
		    // group outings: their people are rows above; the staff here
		    (r.groups || []).length ? el('section', { 'data-test': 'guest-groups' },
			el('h2', {}, t('partner.guests.groups')),
			el('ul', {}, r.groups.map((g) => el('li', {},
			    t('partner.guests.group', { structure: g.structure,
				members: g.members, staff: g.staff_seats, code: g.code })))))
			: null));
		document.title = `${t('partner.guests.title')} – ${o.title}`;
	},
};
