// What the two capability pages (voucher.html, public.html) share: an
// anonymous JSON-RPC call to POST /rpc and the French way of writing times.
// They are not part of the single-page app: a person opens them from a link
// or a QR code, without an account (docs/web.md, "Le bon de sortie").

// Times are shown in Paris time: the network's events take place in France
// (docs/reports.md, "Months and years are those of Paris").
export const ZONE = 'Europe/Paris';

let nextId = 1;

// Calls method with params; resolves to the result, or rejects with an
// Error carrying the JSON-RPC error's data.reason as .reason ("network"
// when the server could not be reached or did not answer JSON-RPC).
export async function anonCall(method, params) {
	const id = nextId++;
	let res;
	try {
		res = await fetch('/rpc', {
			method: 'POST',
			headers: { 'Content-Type': 'application/json' },
			credentials: 'same-origin',
			body: JSON.stringify({ jsonrpc: '2.0', id, method, params }),
		});
	} catch (e) {
		throw Object.assign(new Error(String(e)), { reason: 'network' });
	}
	let answer;
	try {
		answer = await res.json();
	} catch (e) {
		throw Object.assign(new Error(`HTTP ${res.status}`),
		    { reason: 'network' });
	}
	if (answer.error) {
		const data = answer.error.data || {};
		throw Object.assign(new Error(answer.error.message),
		    { reason: data.reason || 'internal_error', data });
	}
	return answer.result;
}

function fmt(opts, lang) {
	return new Intl.DateTimeFormat(lang === 'en' ? 'en-GB' : 'fr-FR',
	    Object.assign({ timeZone: ZONE }, opts));
}

// "samedi 14 mars 2027"
export function longDate(iso, lang = 'fr') {
	return fmt({ weekday: 'long', day: 'numeric', month: 'long',
	    year: 'numeric' }, lang).format(new Date(iso));
}

// "19 h 30", "20 h" in French (as the desk writes it, web/js/fmt.js);
// "19:30" in English.
export function hourMinute(iso, lang = 'fr') {
	const p = {};
	for (const x of fmt({ hour: '2-digit', minute: '2-digit',
	    hourCycle: 'h23' }, lang).formatToParts(new Date(iso)))
		p[x.type] = x.value;
	if (lang === 'en')
		return `${p.hour}:${p.minute}`;
	const h = String(Number(p.hour));
	return p.minute === '00' ? `${h} h` : `${h} h ${p.minute}`;
}

// The calendar day in Paris, "2027-03-14", to tell whether two times fall
// on the same day.
export function dayKey(iso) {
	// Swedish writes dates as ISO 8601 does.
	return new Intl.DateTimeFormat('sv-SE', { timeZone: ZONE,
	    year: 'numeric', month: '2-digit', day: '2-digit' })
	    .format(new Date(iso));
}

// Short helper to build elements without innerHTML: el('p', {class: 'x'},
// 'text', child, ...). Strings become text nodes, never markup.
export function el(tag, attrs, ...children) {
	const node = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs || {})) {
		if (v === null || v === undefined || v === false)
			continue;
		node.setAttribute(k, v === true ? '' : String(v));
	}
	for (const c of children) {
		if (c === null || c === undefined || c === false)
			continue;
		node.append(c instanceof Node ? c : document.createTextNode(String(c)));
	}
	return node;
}

// A sentence in French followed by its English translation, the English
// marked as such for screen readers: el('p', {}, ...bilingual(fr, en)).
export function bilingual(fr, en) {
	return [el('span', { lang: 'fr' }, fr), ' ',
	    el('span', { lang: 'en', class: 'en' }, en)];
}
