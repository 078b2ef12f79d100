// "Permanence" (#/desk): the month's permanence at a glance, wishes taken
// in a few keystrokes, the draw and its table (docs/draw.md), walk-in
// claims, opening and closing. #/desk/ID shows another permanence.

import { call, batch, idempotencyKey } from '../../rpc.js';
import { t } from '../../i18n.js';
import * as fmt from '../../fmt.js';
import { el, clear, field, onSubmit, showFormError, toast, confirmDialog,
	table, loading, failure, errorText } from '../../ui.js';
import { personPicker, personName, noPerson } from './picker.js';
import { voucherLink } from './people.js';

export const desk = {
	route: '/desk',
	roles: ['referent'],
	title: 'desk.title',
	render: (root, ctx) => show(root, ctx, null),
};

export const deskOne = {
	route: '/desk/:id',
	roles: ['referent'],
	nav: false,
	title: 'desk.title',
	render: (root, ctx) => show(root, ctx, Number(ctx.params.id)),
};

// The permanence to show by default: the first of this month (or later)
// not yet closed and not over; else this month's last one.
function pickCurrent(items) {
	const now = Date.now();
	return items.find(p => p.state !== 'closed' && Date.parse(p.ends_at) > now) ||
		items.filter(p => Date.parse(p.starts_at) <= now).pop() || items[0] || null;
}

async function show(root, ctx, id) {
	root.append(el('h1', {}, t('desk.title')));
	const body = el('div', {}, loading());
	root.append(body);
	let list;
	try {
		list = await call('permanence.list', { from: fmt.monthStart(), limit: 12 });
	} catch (err) {
		clear(body, failure(err));
		return;
	}
	if (id === null) {
		const cur = pickCurrent(list.items);
		if (!cur) {
			clear(body, el('p', { 'data-test': 'no-permanence' }, t('desk.none')));
			return;
		}
		id = cur.id;
	}
	await load(body, ctx, id, list.items);
}

async function load(body, ctx, id, others) {
	let pm;
	let offers;
	try {
		[pm, offers] = await Promise.all([
			call('permanence.get', { permanence_id: id }),
			call('offer.list', { from: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
				available_only: true, limit: 100 }),
		]);
	} catch (err) {
		clear(body, failure(err));
		return;
	}
	const titles = new Map();
	for (const o of offers.items)
		titles.set(o.id, o);
	for (const b of pm.blocks)
		titles.set(b.offer_id, { id: b.offer_id, title: b.offer_title,
			starts_at: b.offer_starts_at, venue: b.venue });
	// Offers chosen in wishes but no longer listed (full, past deadline).
	const missing = new Set();
	for (const w of pm.wishes)
		w.choices.forEach(c => { if (!titles.has(c)) missing.add(c); });
	if (pm.draw)
		pm.draw.results.forEach(r => { if (r.offer_id && !titles.has(r.offer_id)) missing.add(r.offer_id); });
	if (missing.size) {
		const got = await batch([...missing].map(o => ['offer.get', { offer_id: o }]));
		got.forEach(o => { if (o && o.id) titles.set(o.id, o); });
	}
	const ctxd = { ctx, pm, titles, offers: offers.items,
		reload: () => load(body, ctx, id, others) };
	clear(body,
		summary(ctxd, others),
		blocks(ctxd),
		['scheduled', 'open'].includes(pm.state) ? wishForm(ctxd) : null,
		wishes(ctxd),
		pm.draw ? drawTable(ctxd) : null,
		pm.state === 'open' ? claimForm(ctxd) : null);
}

function offerLabel(titles, oid) {
	const o = titles.get(oid);
	if (!o)
		return t('desk.offer_n', { id: oid });
	return o.title + ' (' + fmt.dateTime(o.starts_at) + ')';
}

function stateBadge(state) {
	const kind = { scheduled: '', open: 'ok', drawn: 'warn', closed: 'bad' }[state];
	return el('span', { class: 'badge ' + kind, 'data-test': 'permanence-state',
		'data-state': state }, t('state.' + state));
}

function summary({ pm, reload }, others) {
	const actions = el('div', { class: 'actions' });
	const act = (label, test, method, question, cls = '') =>
		el('button', { type: 'button', class: cls, 'data-test': test, onclick: async () => {
			if (question && !await confirmDialog(question, label))
				return;
			try {
				await call(method, { permanence_id: pm.id });
				toast(t('desk.done.' + test));
				await reload();
			} catch (err) {
				toast(errorText(err), 'error');
			}
		} }, label);
	if (pm.state === 'scheduled')
		actions.append(act(t('desk.open'), 'open', 'permanence.open', null, 'primary'));
	if (['scheduled', 'open'].includes(pm.state))
		actions.append(act(t('desk.draw'), 'draw', 'permanence.draw',
			t('desk.draw_confirm', { n: pm.wishes_count }), 'primary'));
	if (pm.state !== 'closed')
		actions.append(act(t('desk.close'), 'close', 'permanence.close',
			t('desk.close_confirm'), 'danger'));
	// The next few others, to switch to another day.
	const near = others.filter(p => p.id !== pm.id && p.state !== 'closed').slice(0, 3);
	const choose = near.length ? el('nav', { 'aria-label': t('desk.others') },
		el('h3', {}, t('desk.others')),
		el('ul', {}, near.map(p => el('li', {},
			p.id === pm.id ? el('strong', { 'aria-current': 'page' }, fmt.range(p.starts_at, p.ends_at, p.timezone))
				: el('a', { href: '#/desk/' + p.id }, fmt.range(p.starts_at, p.ends_at, p.timezone)),
			' – ', t('state.' + p.state))))) : null;
	return el('section', { class: 'card', 'aria-labelledby': 'pm-title', 'data-test': 'permanence' },
		el('h2', { id: 'pm-title' }, pm.title || t('desk.untitled')),
		el('dl', { class: 'facts' },
			el('dt', {}, t('desk.when')), el('dd', {}, fmt.range(pm.starts_at, pm.ends_at, pm.timezone)),
			el('dt', {}, t('desk.where')), el('dd', {}, pm.location || '—'),
			el('dt', {}, t('desk.state')), el('dd', {}, stateBadge(pm.state)),
			el('dt', {}, t('desk.set_aside')), el('dd', {}, t('desk.set_aside_n',
				{ seats: pm.seats_set_aside, claimed: pm.seats_claimed, remaining: pm.seats_remaining })),
			el('dt', {}, t('desk.wishes_count')), el('dd', { 'data-test': 'wishes-count' }, String(pm.wishes_count)),
			el('dt', {}, t('desk.seed_hash')), el('dd', {}, el('code', { 'data-test': 'seed-sha256' }, pm.seed_sha256 || '—'))),
		actions, choose);
}

function blocks({ pm }) {
	return el('section', { class: 'card', 'aria-labelledby': 'blocks-title' },
		el('h2', { id: 'blocks-title' }, t('desk.blocks')),
		pm.blocks.length ? table(
			[t('desk.offer'), t('desk.offer_when'), t('desk.venue'), t('desk.block_seats'),
				t('desk.block_claimed'), t('desk.block_remaining')],
			pm.blocks.map(b => [b.offer_title, fmt.dateTime(b.offer_starts_at), b.venue,
				String(b.seats), String(b.claimed),
				b.returned_at ? t('desk.returned') : String(b.remaining)]),
			{ 'data-test': 'blocks' }, t('desk.blocks'))
			: el('p', { class: 'muted' }, t('desk.no_blocks')));
}

// Offers one may wish for: the blocks' first, then every offer with seats.
function offerOptions({ pm, titles, offers }, emptyLabel) {
	const seen = new Set();
	const opts = [['', emptyLabel]];
	for (const b of pm.blocks)
		if (!b.returned_at && !seen.has(b.offer_id)) {
			seen.add(b.offer_id);
			opts.push([String(b.offer_id), t('desk.block_option',
				{ title: offerLabel(titles, b.offer_id), n: b.remaining })]);
		}
	for (const o of offers)
		if (!seen.has(o.id)) {
			seen.add(o.id);
			opts.push([String(o.id), offerLabel(titles, o.id)]);
		}
	return opts;
}

function wishForm(d) {
	const picker = personPicker({ test: 'wish-person' });
	const choices = [1, 2, 3].map(n => field({ name: n === 1 ? 'choices' : 'choice' + n,
		label: t('desk.choice_n', { n }), required: n === 1,
		options: offerOptions(d, n === 1 ? t('desk.choose') : t('desk.no_choice')),
		attrs: { 'data-test': 'wish-choice-' + n } }));
	const seats = field({ name: 'seats', label: t('desk.party'), type: 'number', required: true,
		hint: t('desk.party_hint'),
		attrs: { min: 1, max: 100, value: '1', inputmode: 'numeric', 'data-test': 'wish-seats' } });
	// Got nothing at the draw: wait for every full choice (docs/waitlist.md).
	const waitAll = field({ name: 'waitlist_all', label: t('desk.waitlist_all'), type: 'checkbox',
		hint: t('desk.waitlist_all_hint'), attrs: { 'data-test': 'wish-waitlist-all' } });
	const form = el('form', { novalidate: true, 'data-test': 'wish-form' },
		picker, el('div', { class: 'row' }, choices), seats, waitAll,
		el('div', { class: 'actions' },
			el('button', { type: 'submit', class: 'primary', 'data-test': 'wish-submit' }, t('desk.add_wish'))));
	onSubmit(form, async () => {
		if (!picker.value)
			return showFormError(form, noPerson());
		const ids = choices.map(c => Number(c.control.value)).filter(Boolean);
		if (!ids.length)
			return showFormError(form, { reason: 'required', field: 'choices', data: {} });
		if (new Set(ids).size !== ids.length)
			return showFormError(form, { reason: 'invalid_params', field: 'choices', data: {} });
		const res = await call('permanence.wish', { permanence_id: d.pm.id,
			beneficiary_id: picker.value, choices: ids,
			seats: Number(seats.control.value) || 1,
			waitlist_all: waitAll.control.checked });
		toast(t(res.replaces_wish_id ? 'desk.wish_replaced' : 'desk.wish_added',
			{ name: personName(picker.person) }));
		await d.reload();
		const again = document.querySelector('[data-test="wish-person-search"]');
		if (again)
			again.focus();
	});
	return el('section', { class: 'card', 'aria-labelledby': 'wish-title' },
		el('h2', { id: 'wish-title' }, t('desk.add_wish_title')),
		el('p', { class: 'muted' }, t('desk.add_wish_intro')), form);
}

function outcome(titles, w) {
	if (w.rank)
		return t('desk.granted', { rank: w.rank, title: offerLabel(titles, w.offer_id || w.choices[w.rank - 1]) });
	if (w.reason) {
		const refused = t('desk.refused', { reason: t('reason.' + w.reason) });
		return w.waitlist && w.waitlist.length
			? refused + ' – ' + t('desk.waiting_for', { titles: w.waitlist.map(o => offerLabel(titles, o)).join(', ') })
			: refused;
	}
	return '—';
}

function wishes({ pm, titles }) {
	return el('section', { class: 'card', 'aria-labelledby': 'wishes-title' },
		el('h2', { id: 'wishes-title' }, t('desk.wishes', { n: pm.wishes.length })),
		pm.wishes.length ? table(
			[t('desk.person'), t('desk.choices'), t('desk.seats'), t('desk.result')],
			pm.wishes.map(w => el('tr', { 'data-test': 'wish-row' },
				el('td', {}, w.holder),
				el('td', {}, el('ol', {}, w.choices.map(c => el('li', {}, offerLabel(titles, c))))),
				el('td', {}, String(w.seats)),
				el('td', {}, pm.draw ? outcome(titles, w) : t('desk.pending')))),
			{ 'data-test': 'wishes' }, t('desk.wishes', { n: pm.wishes.length }))
			: el('p', { class: 'muted' }, t('desk.no_wishes')));
}

function drawTable({ pm, titles }) {
	const dr = pm.draw;
	const names = new Map(pm.wishes.map(w => [w.beneficiary_id, w.holder]));
	const check = el('p', { role: 'status', 'data-test': 'seed-check' });
	verifySeed(dr.seed, pm.seed_sha256, check);
	return el('section', { class: 'card', 'aria-labelledby': 'draw-title', 'data-test': 'draw' },
		el('h2', { id: 'draw-title' }, t('desk.draw_title')),
		el('p', {}, t('desk.draw_summary', { wishes: dr.wishes, granted: dr.granted,
			when: fmt.dateTime(dr.drawn_at || pm.drawn_at) })),
		el('p', { class: 'muted' }, t('desk.draw_rules', { weight: dr.no_show_weight,
			days: dr.history_window_days })),
		table([t('desk.order'), t('desk.person'), t('desk.score'), t('desk.lottery_key'),
			t('desk.result'), t('desk.voucher')],
		dr.results.map(r => el('tr', { 'data-test': 'draw-row' },
			el('td', {}, String(r.position)),
			el('td', {}, names.get(r.beneficiary_id) || t('desk.erased')),
			el('td', {}, t('desk.score_detail', { score: r.score, attended: r.attended, no_shows: r.no_shows })),
			el('td', {}, el('code', {}, r.lottery_key)),
			el('td', {}, outcome(titles, r)),
			el('td', {}, r.code ? voucherLink(r.code) : '—'))),
		{ 'data-test': 'draw-table' }, t('desk.draw_title')),
		el('h3', {}, t('desk.seed_title')),
		el('dl', { class: 'facts' },
			el('dt', {}, t('desk.seed_hash')), el('dd', {}, el('code', {}, pm.seed_sha256)),
			el('dt', {}, t('desk.seed')), el('dd', {}, el('code', { 'data-test': 'seed' }, dr.seed))),
		check,
		el('p', { class: 'muted' }, t('desk.seed_how')),
		el('pre', {}, el('code', {}, 'printf %s ' + dr.seed + ' | sha256sum')));
}

// The revealed seed must hash to the fingerprint published before the
// wishes (docs/draw.md, "The seed"): the browser checks it too.
async function verifySeed(seed, hash, out) {
	if (!seed || !crypto.subtle)
		return;
	const buf = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(seed));
	const hex = Array.from(new Uint8Array(buf), b => b.toString(16).padStart(2, '0')).join('');
	out.textContent = hex === hash ? t('desk.seed_ok') : t('desk.seed_bad');
	out.className = hex === hash ? 'badge ok' : 'badge bad';
}

function claimForm(d) {
	const picker = personPicker({ test: 'claim-person' });
	const offer = field({ name: 'offer_id', label: t('desk.claim_offer'), required: true,
		options: offerOptions(d, t('desk.choose')), attrs: { 'data-test': 'claim-offer' } });
	const seats = field({ name: 'seats', label: t('desk.party'), type: 'number', required: true,
		attrs: { min: 1, max: 100, value: '1', inputmode: 'numeric', 'data-test': 'claim-seats' } });
	const result = el('div', { role: 'status' });
	const form = el('form', { novalidate: true, 'data-test': 'claim-form' },
		picker, offer, seats,
		el('div', { class: 'actions' },
			el('button', { type: 'submit', class: 'primary', 'data-test': 'claim-submit' }, t('desk.claim'))),
		result);
	const key = { value: idempotencyKey() };
	onSubmit(form, async () => {
		if (!picker.value)
			return showFormError(form, noPerson());
		if (!offer.control.value)
			return showFormError(form, { reason: 'required', field: 'offer_id', data: {} });
		let bk;
		try {
			bk = await call('permanence.claim', { permanence_id: d.pm.id,
				beneficiary_id: picker.value, offer_id: Number(offer.control.value),
				seats: Number(seats.control.value) || 1, idempotency_key: key.value });
		} catch (err) {
			// Only a retry of the very same claim after a lost answer
			// may reuse its key.
			if (!['unavailable', 'timeout'].includes(err.reason))
				key.value = idempotencyKey();
			throw err;
		}
		key.value = idempotencyKey();
		toast(t('desk.claimed', { code: bk.code }));
		await d.reload();
	});
	return el('section', { class: 'card', 'aria-labelledby': 'claim-title' },
		el('h2', { id: 'claim-title' }, t('desk.claim_title')),
		el('p', { class: 'muted' }, t('desk.claim_intro')), form);
}
