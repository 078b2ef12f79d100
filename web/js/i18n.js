// Messages in French first, English second. One catalogue per language
// (web/i18n/fr.js, web/i18n/en.js): a default-exported object of keys to
// strings, with {name} placeholders. The choice is kept in localStorage
// and <html lang> follows it.

import fr from '../i18n/fr.js';
import en from '../i18n/en.js';

const catalogues = { fr, en };
const STORE = 'strapontin.lang';
const listeners = new Set();

function stored() {
	try {
		return localStorage.getItem(STORE);
	} catch (e) {
		return null;
	}
}

let current = catalogues[stored()] ? stored() : 'fr';

export const languages = ['fr', 'en'];

export function lang() {
	return current;
}

export function setLang(l) {
	if (!catalogues[l])
		return;
	current = l;
	try {
		localStorage.setItem(STORE, l);
	} catch (e) {
		// private browsing: the choice lasts for this page only
	}
	applyLang();
	listeners.forEach(fn => fn(l));
}

export function applyLang() {
	document.documentElement.lang = current;
}

export function onLangChange(fn) {
	listeners.add(fn);
	return () => listeners.delete(fn);
}

export function has(key) {
	return key in catalogues[current] || key in fr;
}

// t('desk.wishes', {n: 3}); a missing key falls back to French, then to
// the key itself (visible, so that it gets noticed).
export function t(key, vars) {
	let s = catalogues[current][key];
	if (s === undefined)
		s = fr[key];
	if (s === undefined)
		return key;
	if (vars)
		s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
	return s;
}
