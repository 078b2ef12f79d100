// The referent's people (#/people). Being written.
import { el } from '../../ui.js';
import { t } from '../../i18n.js';
export const people = { route: '/people', roles: ['referent'], title: 'people.title',
	render(root) { root.append(el('h1', {}, t('people.title'))); } };
export const person = { ...people, route: '/people/:id', nav: false };
