// The offers browser (#/offers). Being written.
import { el } from '../../ui.js';
import { t } from '../../i18n.js';
export const offers = { route: '/offers', roles: ['referent'], title: 'offers.title',
	render(root) { root.append(el('h1', {}, t('offers.title'))); } };
