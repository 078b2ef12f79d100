// Small DOM helpers shared by every page: el(), labelled form fields with
// their error messages, API errors in the reader's language, toasts and
// confirmation dialogs.

import { t, has } from './i18n.js';
import * as fmt from './fmt.js';

// el('button', {class: 'primary', onclick: fn}, 'Text', child, ...)
// Attributes starting with "on" are listeners; `data-*`, `aria-*` and the
// rest are set as attributes; false/null attributes are left out.
export function el(tag, attrs = {}, ...children) {
	const node = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs || {})) {
		if (v === false || v === null || v === undefined)
			continue;
		if (k.startsWith('on') && typeof v === 'function')
			node.addEventListener(k.slice(2), v);
		else if (k === 'value')
			node.value = v;
		else if (k === 'checked')
			node.checked = !!v;
		else
			node.setAttribute(k, v === true ? '' : v);
	}
	append(node, children);
	return node;
}

function append(node, children) {
	for (const c of children.flat()) {
		if (c === null || c === undefined || c === false)
			continue;
		node.append(c instanceof Node ? c : document.createTextNode(String(c)));
	}
}

export function clear(node, ...children) {
	node.replaceChildren();
	append(node, children);
	return node;
}

let uid = 0;
export function newId(prefix = 'f') {
	return prefix + '-' + (++uid);
}

// A labelled input: field({name: 'first_name', label: t('...'), type,
// required, hint, attrs}). Returns the wrapper; the control is
// wrapper.control. The error slot is tied by aria-describedby.
export function field({ name, label, type = 'text', required = false,
	hint = null, options = null, attrs = {} }) {
	const id = newId(name);
	const errId = id + '-err';
	const hintId = hint ? id + '-hint' : null;
	const described = [hintId, errId].filter(Boolean).join(' ');
	let control;
	if (options) {
		control = el('select', { id, name, required, 'aria-describedby': described, ...attrs },
			options.map(([v, text]) => el('option', { value: v }, text)));
	} else if (type === 'textarea') {
		control = el('textarea', { id, name, required, 'aria-describedby': described, ...attrs });
	} else {
		control = el('input', { id, name, type, required, 'aria-describedby': described, ...attrs });
	}
	const isCheck = type === 'checkbox';
	const lab = el('label', { for: id }, label,
		required && !isCheck ? el('span', { class: 'req', 'aria-hidden': 'true' }, ' *') : null);
	const wrap = el('div', { class: isCheck ? 'field check' : 'field', 'data-field': name },
		isCheck ? [control, lab] : [lab, control],
		hint ? el('p', { class: 'hint', id: hintId }, hint) : null,
		el('p', { class: 'error', id: errId }));
	wrap.control = control;
	return wrap;
}

// Put an API error next to its field when the form has it, else in the
// form's general error slot, in the page's words if given (text).
// Returns true if a field took it.
export function showFormError(form, err, text = errorText(err)) {
	clearFormErrors(form);
	const wrap = err.field && form.querySelector(`[data-field="${CSS.escape(err.field)}"]`);
	if (wrap) {
		wrap.querySelector('.error').textContent = text;
		wrap.control.setAttribute('aria-invalid', 'true');
		wrap.control.focus();
		return true;
	}
	let slot = form.querySelector('.form-error');
	if (!slot) {
		slot = el('p', { class: 'form-error', role: 'alert' });
		form.prepend(slot);
	}
	slot.textContent = text;
	return false;
}

export function clearFormErrors(form) {
	form.querySelectorAll('.field .error').forEach(p => { p.textContent = ''; });
	form.querySelectorAll('[aria-invalid]').forEach(c => c.removeAttribute('aria-invalid'));
	const slot = form.querySelector('.form-error');
	if (slot)
		slot.textContent = '';
}

// An API error in the reader's language: err.<context>.<reason> when
// the caller gives a context (the same reason may need other words for
// another action), then err.<reason>.<field>, then err.<reason>, then
// the server's own sentence. Extra data (dates, counts) fill the
// placeholders.
export function errorText(err, context = null) {
	if (!err || !err.reason)
		return t('err.internal_error');
	const d = err.data || {};
	const vars = { ...d, message: err.message };
	for (const k of ['booking_deadline', 'checked_in_at'])
		if (d[k])
			vars[k] = fmt.dateTime(d[k]);
	if (d.state && has('state.' + d.state))
		vars.state = t('state.' + d.state);
	if (context && has(`err.${context}.${err.reason}`))
		return t(`err.${context}.${err.reason}`, vars);
	if (err.field && has(`err.${err.reason}.${err.field}`))
		return t(`err.${err.reason}.${err.field}`, vars);
	if (has('err.' + err.reason))
		return t('err.' + err.reason, vars);
	return err.message;
}

// Submit handler wrapper: disables the form's buttons while the call
// runs, shows errors by field.
export function onSubmit(form, fn) {
	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		clearFormErrors(form);
		const buttons = form.querySelectorAll('button');
		buttons.forEach(b => { b.disabled = true; });
		try {
			await fn(new FormData(form));
		} catch (err) {
			if (err && err.reason)
				showFormError(form, err);
			else
				throw err;
		} finally {
			buttons.forEach(b => { b.disabled = false; });
		}
	});
}

// A message read out by screen readers (the region is aria-live).
export function toast(text, kind = 'info') {
	const region = document.getElementById('toasts');
	const item = el('p', { class: 'toast ' + kind }, text);
	region.append(item);
	setTimeout(() => item.remove(), 6000);
}

// await confirmDialog(t('...'), t('...')) → true if confirmed. A real
// <dialog>: focus is trapped, Escape cancels.
export function confirmDialog(message, okLabel = t('ui.ok'), cancelLabel = t('ui.cancel')) {
	return new Promise((resolve) => {
		const ok = el('button', { type: 'submit', value: 'ok', class: 'primary',
			'data-test': 'confirm-ok' }, okLabel);
		const no = el('button', { type: 'submit', value: 'cancel',
			'data-test': 'confirm-cancel' }, cancelLabel);
		const msgId = newId('dlg');
		const dlg = el('dialog', { 'aria-labelledby': msgId },
			el('form', { method: 'dialog' },
				el('p', { id: msgId }, message),
				el('div', { class: 'actions' }, no, ok)));
		document.body.append(dlg);
		dlg.addEventListener('close', () => {
			resolve(dlg.returnValue === 'ok');
			dlg.remove();
		});
		dlg.showModal();
		no.focus();
	});
}

// A table from rows: table([t('a'), t('b')], rows.map(r => [x, y])).
// On a narrow screen the table scrolls sideways in its wrapper, which
// can take focus so that the keyboard scrolls it too; `label` names it.
export function table(headers, rows, attrs = {}, label = t('ui.table')) {
	return el('div', { class: 'table-wrap', tabindex: '0', role: 'group',
		'aria-label': label },
		el('table', attrs,
			el('thead', {}, el('tr', {}, headers.map(h => el('th', { scope: 'col' }, h)))),
			el('tbody', {}, rows.map(r => Array.isArray(r)
				? el('tr', {}, r.map(c => el('td', {}, c)))
				: r))));
}

export function loading() {
	return el('p', { class: 'loading', role: 'status' }, t('ui.loading'));
}

// A failure to load a page, with its reason.
export function failure(err) {
	return el('p', { class: 'form-error', role: 'alert' }, errorText(err));
}
