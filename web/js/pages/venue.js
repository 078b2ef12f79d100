// Helpers shared by the partner's and the coordinator's pages (webvenue):
// local date-time inputs in Paris time, errors next to their field in the
// reader's language, whole lists read page by page, files made in the page.

import { call } from '../rpc.js';
import { t, has } from '../i18n.js';
import { clearFormErrors, errorText, el, showFormError } from '../ui.js';
import * as fmt from '../fmt.js';

// The network's events take place in France: offers are entered and shown
// in Paris time (docs/reports.md), whatever the browser's own zone.
export const ZONE = fmt.DEFAULT_TZ;

// '2027-04-10T18:30:00Z' → '2027-04-10T20:30' for <input type=datetime-local>.
export function toLocalInput(iso) {
	if (!iso)
		return '';
	const p = {};
	for (const x of new Intl.DateTimeFormat('en-GB', { timeZone: ZONE,
	    year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit',
	    minute: '2-digit', hourCycle: 'h23' }).formatToParts(new Date(iso)))
		p[x.type] = x.value;
	return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
}

// '2027-04-10T20:30' (Paris) → '2027-04-10T18:30:00Z'; '' → null.
export function fromLocalInput(v) {
	if (!v)
		return null;
	const [day, hm] = v.split('T');
	return fmt.atZone(day, hm.slice(0, 5), ZONE);
}

// An API error next to its field. The page's own words come first
// (`<prefix>.err.<reason>.<field>`, then `<prefix>.err.<reason>`): the server's
// invalid_params sentence is English, the page says it in the reader's
// language. Returns true if a field took it.
export function fieldError(form, err, prefix) {
	const vars = { ...(err.data || {}), message: err.message };
	const keys = [];
	if (err.field)
		keys.push(`${prefix}.err.${err.reason}.${err.field}`);
	keys.push(`${prefix}.err.${err.reason}`);
	const key = keys.find((k) => has(k));
	return showFormError(form, err, key ? t(key, vars) : errorText(err));
}

// Like ui.onSubmit, with fieldError for the page's own messages.
export function submitWith(form, prefix, fn) {
	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		clearFormErrors(form);
		const buttons = form.querySelectorAll('button');
		buttons.forEach((b) => { b.disabled = true; });
		try {
			await fn(new FormData(form));
		} catch (err) {
			if (err && err.reason)
				fieldError(form, err, prefix);
			else
				throw err;
		} finally {
			buttons.forEach((b) => { b.disabled = false; });
		}
	});
}

// Every item of a paged list, up to max (lists are small here: partners,
// structures, users of one network).
export async function listAll(method, params = {}, max = 5000) {
	const items = [];
	let cursor = null;
	do {
		const res = await call(method, { ...params, limit: 500,
		    ...(cursor ? { cursor } : {}) });
		items.push(...res.items);
		cursor = res.items.length ? res.next_cursor : null;
	} while (cursor && items.length < max);
	return items;
}

// Offers the user a file made in the page (the CSV of a report).
export function download(name, text, type) {
	const url = URL.createObjectURL(new Blob([text], { type }));
	const a = el('a', { href: url, download: name, hidden: true });
	document.body.append(a);
	a.click();
	a.remove();
	setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// "2 places" / "1 place"
export function seats(n) {
	return t(n === 1 ? 'partner.seat_one' : 'partner.seat_many', { n });
}
