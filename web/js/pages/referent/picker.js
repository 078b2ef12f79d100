// Find a person of the structure by name as you type: type a few
// letters, Enter picks the first match (or arrow down to the list).
// The chosen id is picker.value; the wrapper is a form field named
// beneficiary_id, so API errors on that field land next to it.

import { call } from '../../rpc.js';
import { t } from '../../i18n.js';
import { el, clear, field, newId } from '../../ui.js';

export function personName(b) {
	return b.first_name + ' ' + b.last_name;
}

export function personPicker({ label = t('pick.label'), onPick = () => {}, test = 'person' } = {}) {
	const wrap = field({ name: 'beneficiary_id', label, type: 'search',
		hint: t('pick.hint'),
		attrs: { autocomplete: 'off', 'data-test': test + '-search',
			'aria-autocomplete': 'list' } });
	const input = wrap.control;
	const listId = newId('people');
	const list = el('ul', { class: 'results', id: listId, 'aria-label': t('pick.results') });
	const chosen = el('p', { class: 'muted', role: 'status', 'data-test': test + '-chosen' });
	input.setAttribute('aria-controls', listId);
	wrap.append(list, chosen);
	wrap.value = null;
	let found = [];
	let timer = null;
	let seq = 0;

	function pick(b) {
		wrap.value = b.id;
		wrap.person = b;
		input.value = personName(b);
		clear(list);
		found = [];
		chosen.textContent = t('pick.chosen', { name: personName(b) });
		onPick(b);
	}
	wrap.pick = pick;
	wrap.reset = () => {
		wrap.value = null;
		wrap.person = null;
		input.value = '';
		clear(list);
		chosen.textContent = '';
	};

	async function search() {
		const q = input.value.trim();
		const mine = ++seq;
		if (q.length < 2) {
			clear(list);
			found = [];
			return;
		}
		let res;
		try {
			res = await call('beneficiary.list', { query: q.slice(0, 100), limit: 8 });
		} catch (e) {
			return;
		}
		if (mine !== seq)
			return;         // a later keystroke already searched
		found = res.items;
		clear(list, found.length ? found.map(b => el('li', {},
			el('button', { type: 'button', 'data-test': test + '-result',
				onclick: () => { pick(b); input.focus(); } },
				personName(b), b.birth_year ? el('span', { class: 'muted' },
					' (' + b.birth_year + ')') : null)))
			: el('li', { class: 'muted' }, t('pick.nobody')));
	}

	input.addEventListener('input', () => {
		if (wrap.value) {
			wrap.value = null;
			wrap.person = null;
			chosen.textContent = '';
		}
		clearTimeout(timer);
		timer = setTimeout(search, 200);
	});
	input.addEventListener('keydown', async (ev) => {
		if (ev.key === 'Enter' && !wrap.value) {
			ev.preventDefault();
			clearTimeout(timer);
			await search();
			if (found.length)
				pick(found[0]);
		} else if (ev.key === 'ArrowDown') {
			const b = list.querySelector('button');
			if (b) {
				ev.preventDefault();
				b.focus();
			}
		}
	});
	list.addEventListener('keydown', (ev) => {
		const buttons = [...list.querySelectorAll('button')];
		const i = buttons.indexOf(document.activeElement);
		if (ev.key === 'ArrowDown' && i < buttons.length - 1) {
			ev.preventDefault();
			buttons[i + 1].focus();
		} else if (ev.key === 'ArrowUp') {
			ev.preventDefault();
			(i > 0 ? buttons[i - 1] : input).focus();
		} else if (ev.key === 'Escape') {
			clear(list);
			input.focus();
		}
	});
	return wrap;
}

// The error to show when a form needs a person and none was picked.
export function noPerson() {
	return { reason: 'required', field: 'beneficiary_id', data: {},
		message: t('pick.none') };
}
