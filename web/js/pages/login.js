// The login page: e-mail and password; the session goes into an HttpOnly
// cookie set by the server (docs/web.md).

import { call } from '../rpc.js';
import { t } from '../i18n.js';
import { el, field, onSubmit, showFormError } from '../ui.js';

export const login = {
	route: '/login',
	roles: ['anonymous'],
	nav: false,
	title: 'login.title',
	render(root, ctx) {
		const email = field({ name: 'email', label: t('login.email'), type: 'email',
			required: true, attrs: { autocomplete: 'username', 'data-test': 'login-email' } });
		const password = field({ name: 'password', label: t('login.password'),
			type: 'password', required: true,
			attrs: { autocomplete: 'current-password', 'data-test': 'login-password' } });
		const form = el('form', { class: 'login', novalidate: true, 'data-test': 'login-form' },
			el('h1', {}, t('login.title')),
			el('p', { class: 'muted' }, t('login.intro')),
			email, password,
			el('div', { class: 'actions' },
				el('button', { type: 'submit', class: 'primary', 'data-test': 'login-submit' },
					t('login.submit'))));
		onSubmit(form, async (data) => {
			if (!data.get('email') || !data.get('password')) {
				showFormError(form, { reason: 'required',
					field: data.get('email') ? 'password' : 'email',
					message: t('err.required') });
				return;
			}
			const res = await call('auth.login', {
				email: data.get('email').trim(),
				password: data.get('password'),
			});
			await ctx.login(res.user);
		});
		root.append(form);
	},
};
