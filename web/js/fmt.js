// Dates and times for people: in the structure's time zone (Europe/Paris
// unless the structure says otherwise), the French way in French
// ("mardi 16 avril, 10 h", "10 h 30") and the English way in English
// ("Tuesday 16 April, 10:00"). The API speaks UTC (docs/protocol.md).

import { lang } from './i18n.js';

export const DEFAULT_TZ = 'Europe/Paris';
let zone = DEFAULT_TZ;

export function setZone(tz) {
	zone = tz || DEFAULT_TZ;
}

export function getZone() {
	return zone;
}

const cache = new Map();
function formatter(l, tz, opts) {
	const k = l + tz + JSON.stringify(opts);
	if (!cache.has(k))
		cache.set(k, new Intl.DateTimeFormat(l === 'fr' ? 'fr-FR' : 'en-GB',
			{ timeZone: tz, ...opts }));
	return cache.get(k);
}

function parts(iso, tz, opts) {
	const d = iso instanceof Date ? iso : new Date(iso);
	const out = {};
	for (const p of formatter(lang(), tz, opts).formatToParts(d))
		out[p.type] = p.value;
	return out;
}

function clock(p) {
	const h = String(Number(p.hour));
	if (lang() === 'fr')
		return p.minute === '00' ? h + ' h' : h + ' h ' + p.minute;
	return h.padStart(2, '0') + ':' + p.minute;
}

const HM = { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };

// "10 h 30" / "10:30"
export function time(iso, tz = zone) {
	if (!iso)
		return '';
	return clock(parts(iso, tz, HM));
}

// "mardi 16 avril" / "Tuesday 16 April"; the year only when it is not
// this year's.
export function date(iso, tz = zone) {
	if (!iso)
		return '';
	const opts = { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' };
	const p = parts(iso, tz, opts);
	const now = parts(new Date(), tz, opts);
	let s = p.weekday + ' ' + p.day + ' ' + p.month;
	if (p.year !== now.year)
		s += ' ' + p.year;
	return s;
}

// "mardi 16 avril, 10 h" / "Tuesday 16 April, 10:00"
export function dateTime(iso, tz = zone) {
	if (!iso)
		return '';
	return date(iso, tz) + ', ' + time(iso, tz);
}

// "mardi 16 avril, 10 h – 12 h"; another day's end gets its date.
export function range(startIso, endIso, tz = zone) {
	if (!endIso)
		return dateTime(startIso, tz);
	if (ymd(startIso, tz) === ymd(endIso, tz))
		return dateTime(startIso, tz) + ' – ' + time(endIso, tz);
	return dateTime(startIso, tz) + ' – ' + dateTime(endIso, tz);
}

// "2027-04-16": the calendar day in the zone, for <input type=date>.
export function ymd(iso, tz = zone) {
	const p = parts(iso, tz, { year: 'numeric', month: '2-digit', day: '2-digit' });
	return p.year + '-' + p.month + '-' + p.day;
}

// Offset of the zone from UTC at instant ms, in ms.
function offsetAt(ms, tz) {
	const p = parts(new Date(ms), tz, { year: 'numeric', month: '2-digit',
		day: '2-digit', ...HM, second: '2-digit' });
	const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour % 24,
		+p.minute, +p.second);
	return asUtc - Math.floor(ms / 1000) * 1000;
}

// The instant, as an RFC 3339 UTC string, of a wall-clock day and time
// in the zone: atZone('2027-04-16', '00:00').
export function atZone(day, hm = '00:00', tz = zone) {
	const [y, mo, d] = day.split('-').map(Number);
	const [h, mi] = hm.split(':').map(Number);
	const guess = Date.UTC(y, mo - 1, d, h, mi);
	let ms = guess - offsetAt(guess, tz);
	// Around a change of offset the first guess may be an hour off.
	ms = guess - offsetAt(ms, tz);
	return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// First day of the month containing iso (or now), in the zone.
export function monthStart(iso = new Date(), tz = zone) {
	const day = ymd(iso, tz);
	return atZone(day.slice(0, 8) + '01', '00:00', tz);
}

export function addMonths(day, n) {
	const [y, m] = day.split('-').map(Number);
	const d = new Date(Date.UTC(y, m - 1 + n, 1));
	return d.toISOString().slice(0, 10);
}

export function addDays(day, n) {
	const [y, m, d] = day.split('-').map(Number);
	return new Date(Date.UTC(y, m - 1, d + n)).toISOString().slice(0, 10);
}
