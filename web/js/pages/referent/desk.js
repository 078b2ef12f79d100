// The referent's permanence (#/desk). Being written.
import { el } from '../../ui.js';
import { t } from '../../i18n.js';
export const desk = { route: '/desk', roles: ['referent'], title: 'desk.title',
	render(root) { root.append(el('h1', {}, t('desk.title'))); } };
export const deskOne = { ...desk, route: '/desk/:id', nav: false };
