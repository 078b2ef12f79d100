// The account page (#/account): which e-mail notices the user receives
// (docs/mail.md, "Turning notices off"). One check box per notice the
// role receives, ticked when it is received; saving sends the unticked
// ones as auth.set_mail_preferences's mail_off.

import { call } from '../rpc.js';
import { t } from '../i18n.js';
import { el, newId, onSubmit, toast } from '../ui.js';

// The form of the preferences prefs ({mail_off, mail_kinds}).
function mailForm(prefs) {
	const id = newId('mail');
	const boxes = prefs.mail_kinds.map((kind) => {
		const boxId = `${id}-${kind}`;
		const box = el('input', { type: 'checkbox', name: 'mail_on',
		    value: kind, id: boxId, checked: !prefs.mail_off.includes(kind),
		    'aria-describedby': `${boxId}-hint`,
		    'data-test': `mail-${kind}` });
		return el('div', { class: 'field check' }, box,
		    el('label', { for: boxId }, t(`account.kind.${kind}`)),
		    el('p', { class: 'hint', id: `${boxId}-hint` },
			t(`account.kind_hint.${kind}`)));
	});
	// The fieldset is the error slot's owner for data.field "mail_off".
	const set = el('fieldset', { 'data-field': 'mail_off',
	    'aria-describedby': `${id}-hint` },
	    el('legend', {}, t('account.mail.legend')),
	    el('p', { class: 'hint', id: `${id}-hint` }, t('account.mail.hint')),
	    boxes,
	    el('p', { class: 'error' }));
	set.control = set.querySelector('input') || set;
	return el('form', { novalidate: true, 'data-test': 'account-mail' }, set,
	    el('div', { class: 'actions' }, el('button', { type: 'submit',
		class: 'primary', 'data-test': 'account-save' },
		t('account.mail.save'))));
}

export const account = {
	route: '/account',
	roles: ['referent', 'partner'],
	title: 'account.title',
	async render(root, ctx) {
		// Read afresh: the login's user does not carry the preferences,
		// and another session may have changed them.
		const prefs = await call('auth.set_mail_preferences', {});
		const form = mailForm(prefs);
		const status = el('p', { class: 'muted', role: 'status',
		    'data-test': 'account-status' });
		onSubmit(form, async (data) => {
			const on = data.getAll('mail_on');
			const res = await call('auth.set_mail_preferences', {
			    mail_off: prefs.mail_kinds.filter((k) => !on.includes(k)) });
			prefs.mail_off = res.mail_off;
			status.textContent = res.mail_off.length
			    ? t('account.mail.some_off', { n: res.mail_off.length })
			    : t('account.mail.all_on');
			toast(t('account.mail.saved'));
		});
		root.append(el('h1', {}, t('account.title')),
		    el('p', {}, t('account.who', { name: ctx.user.display_name,
			email: ctx.user.email })),
		    el('h2', {}, t('account.mail.title')),
		    el('p', {}, t('account.mail.intro')),
		    form, status);
	},
};
