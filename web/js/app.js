// The shell: who is logged in, the navigation for that role, the hash
// router, the language switch. Pages are modules registered in
// web/js/pages/index.js (web/README.md explains the shape).

import pages from './pages/index.js';
import { call, onUnauthenticated } from './rpc.js';
import { t, lang, setLang, applyLang, onLangChange } from './i18n.js';
import { el, clear, toast, errorText } from './ui.js';
import * as fmt from './fmt.js';

const state = {
	user: null,
	structure: null,
	leave: [],          // cleanups of the page on screen
	after: null,        // where to go after logging in
	gen: 0,             // route() calls so far
	shown: false,       // a page was shown already
};

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const account = document.getElementById('account');

// '#/people/12?b=3' → {path: '/people/12', query: {b: '3'}}
function parseHash() {
	const h = location.hash.replace(/^#/, '') || '/';
	const [path, qs] = h.split('?');
	return { path: path || '/', query: Object.fromEntries(new URLSearchParams(qs || '')) };
}

// '/people/:id' matches '/people/12' with {id: '12'}.
function match(route, path) {
	const a = route.split('/');
	const b = path.split('/');
	if (a.length !== b.length)
		return null;
	const params = {};
	for (let i = 0; i < a.length; i++) {
		if (a[i].startsWith(':'))
			params[a[i].slice(1)] = decodeURIComponent(b[i]);
		else if (a[i] !== b[i])
			return null;
	}
	return params;
}

function allowed(page, user) {
	if (!user)
		return page.roles.includes('anonymous');
	return page.roles.includes(user.role) || page.roles.includes('users');
}

// A role's home: its first registered page in the navigation.
function home(user) {
	const p = pages.find(p => user && p.nav !== false && !p.route.includes(':') &&
		p.roles.includes(user.role));
	return p ? p.route : '/login';
}

export function navigate(path) {
	if (location.hash === '#' + path)
		route();
	else
		location.hash = '#' + path;
}

function leavePage() {
	const fns = state.leave;
	state.leave = [];
	for (const fn of fns) {
		try {
			fn();
		} catch (e) {
			console.error(e);
		}
	}
}

async function route() {
	const { path, query } = parseHash();
	let page = null;
	let params = null;
	for (const p of pages) {
		params = match(p.route, path);
		if (params) {
			page = p;
			break;
		}
	}
	if (!page || path === '/') {
		navigate(home(state.user));
		return;
	}
	if (!allowed(page, state.user)) {
		if (!state.user) {
			state.after = path;
			navigate('/login');
		} else {
			navigate(home(state.user));
		}
		return;
	}
	leavePage();
	renderNav(path);
	document.title = t(page.title) + ' – strapontin';
	// Each page renders into its own node: a page still loading when
	// another route starts writes into a node no longer shown.
	const root = el('div', { class: 'page' });
	const gen = ++state.gen;
	clear(main, root);
	const ctx = {
		user: state.user,
		structure: state.structure,
		params,
		query,
		navigate,
		onLeave: (fn) => (gen === state.gen ? state.leave.push(fn) : fn()),
		login: loggedIn,
		rerender: route,
	};
	main.setAttribute('aria-busy', 'true');
	try {
		await page.render(root, ctx);
	} catch (err) {
		console.error(err);
		root.append(el('p', { class: 'form-error', role: 'alert' },
			err && err.reason ? errorText(err) : t('err.internal_error')));
	}
	if (gen !== state.gen)
		return;
	main.removeAttribute('aria-busy');
	// After a navigation, move focus to the page's heading, so that
	// screen readers and keyboard users start from the new content. Not
	// on the first page shown: Tab must start at the skip link.
	const h1 = main.querySelector('h1');
	const first = !state.shown;
	state.shown = true;
	if (h1 && !first && !main.contains(document.activeElement)) {
		h1.setAttribute('tabindex', '-1');
		h1.focus();
	}
}

function renderNav(path) {
	const items = state.user ? pages.filter(p => p.nav !== false &&
		!p.route.includes(':') && allowed(p, state.user)) : [];
	clear(nav, items.length ? el('ul', {}, items.map(p => el('li', {},
		el('a', { href: '#' + p.route,
			'aria-current': path === p.route || path.startsWith(p.route + '/') ? 'page' : false,
			'data-test': 'nav-' + p.route.replace(/\W+/g, '-').replace(/^-|-$/g, '') },
			t(p.nav_title || p.title))))) : null);
	document.getElementById('skip').textContent = t('shell.skip');
	nav.setAttribute('aria-label', t('shell.nav'));
	const other = lang() === 'fr' ? 'en' : 'fr';
	clear(account,
		state.user ? el('span', { class: 'who', 'data-test': 'who' },
			state.user.display_name) : null,
		el('button', { type: 'button', class: 'link', lang: other, 'data-test': 'lang',
			onclick: () => setLang(other) }, t('shell.other_language')),
		state.user ? el('button', { type: 'button', class: 'link', 'data-test': 'logout',
			onclick: logout }, t('shell.logout')) : null);
}

async function loadStructure() {
	state.structure = null;
	fmt.setZone(fmt.DEFAULT_TZ);
	if (!state.user || !state.user.structure_id)
		return;
	try {
		let cursor = null;
		do {
			const res = await call('structure.list', cursor ? { limit: 500, cursor } : { limit: 500 });
			state.structure = res.items.find(s => s.id === state.user.structure_id) || null;
			cursor = state.structure ? null : res.next_cursor;
		} while (cursor);
	} catch (e) {
		// the time zone stays the default one
	}
	if (state.structure)
		fmt.setZone(state.structure.timezone);
}

async function loggedIn(user) {
	state.user = user;
	await loadStructure();
	const to = state.after;
	state.after = null;
	navigate(to && to !== '/login' ? to : home(user));
}

async function logout() {
	try {
		await call('auth.logout');
	} catch (e) {
		// the session is gone anyway
	}
	state.user = null;
	state.structure = null;
	toast(t('shell.logged_out'));
	navigate('/login');
}

async function start() {
	applyLang();
	onLangChange(() => route());
	onUnauthenticated(() => {
		if (!state.user)
			return;
		state.user = null;
		state.after = parseHash().path;
		toast(t('err.session_ended'), 'error');
		navigate('/login');
	});
	try {
		state.user = (await call('auth.whoami')).user;
		await loadStructure();
	} catch (e) {
		state.user = null;
	}
	// The routes live in the hash: the skip link must move focus, not
	// the location, or it would take the user to another page.
	document.getElementById('skip').addEventListener('click', e => {
		e.preventDefault();
		main.focus();
	});
	window.addEventListener('hashchange', route);
	route();
}

start();
