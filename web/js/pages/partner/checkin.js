// The door (#/checkin), made for a phone held in one hand: choose tonight's
// show, then scan the ticket's QR code with the camera (where the browser
// has BarcodeDetector), read it from a photo, or type the code; the answer
// fills the screen: green to let in, red with the reason not to.

import { call } from '../../rpc.js';
import { t } from '../../i18n.js';
import { el, clear, field, newId } from '../../ui.js';
import * as fmt from '../../fmt.js';
import { parseTicket, codeFromScan } from './ticket.js';
import { listAll, seats, ZONE } from '../venue.js';

// Feature detection, not browser sniffing: Chromium on Android and macOS
// has BarcodeDetector, Firefox and Chromium on Linux do not.
function hasDetector() {
	return 'BarcodeDetector' in window;
}

async function detector() {
	if (!hasDetector())
		return null;
	try {
		const formats = await window.BarcodeDetector.getSupportedFormats();
		if (!formats.includes('qr_code'))
			return null;
		return new window.BarcodeDetector({ formats: ['qr_code'] });
	} catch (e) {
		return null;
	}
}

// "19 h 42", or "mardi 3 décembre, 19 h 42" when it was another day.
function when(iso) {
	return fmt.ymd(iso, ZONE) === fmt.ymd(new Date(), ZONE)
	    ? fmt.time(iso, ZONE) : fmt.dateTime(iso, ZONE);
}

export const checkin = {
	route: '/checkin',
	roles: ['partner', 'admin'],
	title: 'partner.checkin.title',
	async render(root, ctx) {
		// Tonight's shows: from 12 hours ago to 36 hours ahead.
		const now = Date.now();
		const iso = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
		let shows = [];
		try {
			shows = (await listAll('offer.list', {
			    ...(ctx.user.partner_id ? { partner_id: ctx.user.partner_id } : {}),
			    from: iso(now - 12 * 3600e3), to: iso(now + 36 * 3600e3) }, 500))
			    .filter((o) => o.status !== 'cancelled');
		} catch (err) {
			shows = [];
		}

		const show = field({ name: 'offer_id', label: t('partner.checkin.show'),
		    hint: t('partner.checkin.show_hint'),
		    options: [['', t('partner.checkin.any_show')],
			...shows.map((o) => [String(o.id),
			    `${fmt.time(o.starts_at, ZONE)} · ${o.title}`])],
		    attrs: { 'data-test': 'checkin-show' } });
		if (shows.length === 1)
			show.control.value = String(shows[0].id);
		const code = field({ name: 'code', label: t('partner.checkin.code'),
		    hint: t('partner.checkin.code_hint'),
		    attrs: { autocomplete: 'off', autocapitalize: 'characters',
			spellcheck: 'false', class: 'code-input', maxlength: 64,
			'data-test': 'checkin-code' } });
		const form = el('form', { class: 'checkin-form', novalidate: true,
		    'data-test': 'checkin-form' }, show, code,
		    el('div', { class: 'actions' }, el('button', { type: 'submit',
			class: 'primary big', 'data-test': 'checkin-submit' },
			t('partner.checkin.submit'))));

		const resultId = newId('result');
		const result = el('div', { id: resultId, class: 'checkin-result',
		    role: 'status', 'aria-live': 'assertive', 'aria-atomic': 'true',
		    'data-test': 'checkin-result' });

		const video = el('video', { class: 'scan-video', muted: true,
		    playsinline: true, hidden: true, 'aria-label': t('partner.checkin.camera_view') });
		const camStatus = el('p', { class: 'muted', 'data-test': 'camera-status' });
		const camButton = el('button', { type: 'button', 'data-test': 'camera' },
		    t('partner.checkin.camera_start'));
		const photo = el('input', { type: 'file', accept: 'image/*',
		    id: newId('photo'), 'data-test': 'checkin-photo' });
		const scan = el('section', { class: 'card scan', 'aria-labelledby': 'scan-h' },
		    el('h2', { id: 'scan-h' }, t('partner.checkin.scan')),
		    camStatus,
		    el('div', { class: 'actions' }, camButton),
		    video,
		    el('div', { class: 'field' }, el('label', { for: photo.id },
			t('partner.checkin.photo')), photo));

		root.append(el('div', { class: 'checkin' },
		    el('h1', {}, t('partner.checkin.title')), result, form, scan));

		function show_(kind, title, ...lines) {
			clear(result, el('div', { class: `verdict ${kind}`,
			    'data-verdict': kind },
			    el('p', { class: 'big' }, kind === 'ok' ? '✔ ' : '✖ ', title),
			    lines.filter(Boolean).map((l) => el('p', {}, l))));
		}

		async function check(raw) {
			const parsed = parseTicket(raw);
			if (!parsed.ok) {
				show_('bad', t('partner.checkin.invalid'),
				    t(`partner.checkin.bad.${parsed.reason}`,
					{ n: parsed.count, char: parsed.char }));
				return;
			}
			const offerId = Number(show.control.value) || null;
			try {
				// With the chosen show, the server refuses a ticket
				// for another one (wrong_offer) and leaves it valid.
				const r = await call('ticket.check_in', offerId
				    ? { code: parsed.code, offer_id: offerId }
				    : { code: parsed.code });
				show_('ok', t('partner.checkin.admitted'),
				    el('span', { class: 'holder', 'data-test': 'holder' }, r.holder),
				    el('span', { class: 'seats' }, seats(r.seats)),
				    r.offer_title);
			} catch (err) {
				const d = err.data || {};
				if (err.reason === 'wrong_offer')
					show_('bad', t('partner.checkin.wrong_show'),
					    parsed.code, t('partner.checkin.wrong_show_hint'),
					    d.offer_title && d.starts_at
						? t('partner.checkin.wrong_show_other',
						    { title: d.offer_title, at: when(d.starts_at) })
						: null);
				else if (err.reason === 'already_used')
					show_('bad', t('partner.checkin.used',
					    { at: when(d.checked_in_at) }), parsed.code);
				else if (err.reason === 'offer_cancelled')
					show_('bad', t('partner.checkin.cancelled_offer'), parsed.code);
				else if (err.reason === 'not_found' && d.status)
					show_('bad', t('partner.checkin.cancelled'), parsed.code);
				else if (err.reason === 'not_found' && d.checksum === false)
					show_('bad', t('partner.checkin.invalid'),
					    t('partner.checkin.bad.check'));
				else if (err.reason === 'not_found')
					show_('bad', t('partner.checkin.unknown'), parsed.code,
					    t('partner.checkin.unknown_hint'));
				else
					show_('bad', t('partner.checkin.error'), err.message);
			}
		}

		form.addEventListener('submit', async (ev) => {
			ev.preventDefault();
			const raw = code.control.value;
			if (!raw.trim()) {
				code.control.focus();
				return;
			}
			await check(raw);
			code.control.value = '';
			code.control.focus();
		});

		// Camera and photo: both need the detector.
		const det = await detector();
		let stream = null;
		let timer = null;
		function stopCamera() {
			clearTimeout(timer);
			if (stream)
				stream.getTracks().forEach((tr) => tr.stop());
			stream = null;
			video.hidden = true;
			camButton.textContent = t('partner.checkin.camera_start');
		}
		ctx.onLeave(stopCamera);
		if (!det || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
			camButton.hidden = true;
			camStatus.textContent = t('partner.checkin.no_camera');
			camStatus.setAttribute('data-unavailable', 'camera');
		} else {
			camStatus.textContent = t('partner.checkin.camera_hint');
		}
		if (!det) {
			photo.disabled = true;
			photo.closest('.field').append(el('p', { class: 'hint',
			    'data-test': 'photo-unavailable' }, t('partner.checkin.no_photo')));
		}

		let last = '';
		async function tick() {
			if (!stream)
				return;
			try {
				const codes = await det.detect(video);
				if (codes.length && codes[0].rawValue !== last) {
					last = codes[0].rawValue;
					await check(codeFromScan(last));
					setTimeout(() => { last = ''; }, 3000);
				}
			} catch (e) {
				// a frame not ready yet: try the next one
			}
			timer = setTimeout(tick, 250);
		}
		camButton.addEventListener('click', async () => {
			if (stream) {
				stopCamera();
				return;
			}
			try {
				stream = await navigator.mediaDevices.getUserMedia(
				    { video: { facingMode: 'environment' }, audio: false });
			} catch (e) {
				camStatus.textContent = t('partner.checkin.camera_refused');
				return;
			}
			video.srcObject = stream;
			video.hidden = false;
			await video.play();
			camButton.textContent = t('partner.checkin.camera_stop');
			tick();
		});
		photo.addEventListener('change', async () => {
			const file = photo.files && photo.files[0];
			if (!file || !det)
				return;
			try {
				const bitmap = await createImageBitmap(file);
				const codes = await det.detect(bitmap);
				if (!codes.length)
					show_('bad', t('partner.checkin.no_qr'));
				else
					await check(codeFromScan(codes[0].rawValue));
			} catch (e) {
				show_('bad', t('partner.checkin.no_qr'));
			}
			photo.value = '';
		});
		code.control.focus();
	},
};
