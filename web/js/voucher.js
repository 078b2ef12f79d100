// The "bon de sortie": what a person shows at the door. The ticket code is
// read from the fragment (/voucher.html#CODE), which browsers never send to
// the server in a request line nor in a Referer; the page asks voucher.get
// and shows the outing, the code in groups of four and its QR code.
import { anonCall, longDate, hourMinute, dayKey, el, bilingual }
    from './capability.js';

const main = document.getElementById('main');

// The code as typed or pasted: only the characters of a ticket code are
// kept, the server folds case and look-alikes itself (docs/booking-rules.md,
// "Tickets").
function codeFromHash() {
	let h = location.hash.replace(/^#/, '');
	try {
		h = decodeURIComponent(h);
	} catch (e) {
		/* a stray % is left as it is */
	}
	return h.replace(/[\s-]/g, '').toUpperCase();
}

// "P676ZTS804WG94KF" → ["P676", "ZTS8", "04WG", "94KF"]: groups of four, as
// the guest list and the CLI show it, read aloud one group at a time.
function groups(code) {
	const bare = code.replace(/-/g, '');
	const out = [];
	for (let i = 0; i < bare.length; i += 4)
		out.push(bare.slice(i, i + 4));
	return out;
}

function setStatus(fr, en, cls) {
	main.replaceChildren(
	    el('h1', {}, 'Bon de sortie ', el('span', { lang: 'en', class: 'en' },
		'Outing voucher')),
	    el('p', { class: `status ${cls || ''}`, role: cls ? 'alert' : null },
		...bilingual(fr, en)));
}

function when(offer) {
	const date = longDate(offer.starts_at);
	const dateEn = longDate(offer.starts_at, 'en');
	const start = hourMinute(offer.starts_at);
	let fr = `à ${start}`;
	let en = hourMinute(offer.starts_at, 'en');
	if (offer.ends_at && dayKey(offer.ends_at) === dayKey(offer.starts_at)) {
		fr = `de ${start} à ${hourMinute(offer.ends_at)}`;
		en += ` – ${hourMinute(offer.ends_at, 'en')}`;
	}
	return el('p', { class: 'when' },
	    el('span', { class: 'date' }, date), ' ',
	    el('span', { class: 'hour' }, fr), ' ',
	    el('span', { lang: 'en', class: 'en' }, `${dateEn}, ${en}`));
}

function render(v) {
	const o = v.offer;
	const code = groups(v.code);
	const place = [o.venue_name, o.address, o.town].filter((x) => x);
	const seatsFr = v.seats > 1 ? `${v.seats} places` : '1 place';
	const seatsEn = v.seats > 1 ? `${v.seats} seats` : '1 seat';
	const holder = `${v.first_name} ${v.last_initial}${
	    /\.$/.test(v.last_initial) ? '' : '.'}`;

	document.title = `Bon de sortie · ${o.title}`;
	const parts = [
	    el('h1', {}, 'Bon de sortie ',
		el('span', { lang: 'en', class: 'en' }, 'Outing voucher')),
	    el('p', { class: 'event' }, o.title),
	    when(o),
	    el('p', { class: 'place' }, place.join(', ')),
	    el('dl', { class: 'facts' },
		el('div', {},
		    el('dt', {}, 'Au nom de ', el('span', { lang: 'en',
			class: 'en' }, 'Name')),
		    el('dd', { class: 'holder' }, holder)),
		el('div', {},
		    el('dt', {}, 'Places ', el('span', { lang: 'en',
			class: 'en' }, 'Seats')),
		    el('dd', { class: 'seats' }, seatsFr, ' ',
			el('span', { lang: 'en', class: 'en' }, seatsEn)))),
	];
	if (v.status === 'attended')
		parts.push(el('p', { class: 'status used', role: 'status' },
		    ...bilingual('Ce bon a déjà servi à l’entrée.',
			'This voucher was already used at the door.')));
	parts.push(
	    el('figure', { class: 'ticket' },
		el('img', { src: `/qr/${encodeURIComponent(v.code)}.svg`,
		    class: 'qr', width: 240, height: 240,
		    alt: `QR code du billet ${code.join(' ')}` }),
		el('figcaption', {},
		    el('span', { class: 'label' }, 'Code du billet ',
			el('span', { lang: 'en', class: 'en' }, 'Ticket code')),
		    el('span', { class: 'code', 'aria-label':
			code.map((g) => g.split('').join(' ')).join(', ') },
			...code.map((g) => el('span', { class: 'group' }, g))))),
	    el('p', { class: 'hint' }, ...bilingual(
		'Présentez ce bon (imprimé ou sur votre téléphone) à l’accueil. ' +
		'Il est personnel : ne le partagez pas.',
		'Show this voucher (printed or on your phone) at the door. ' +
		'It is personal: do not share it.')));
	main.replaceChildren(...parts);
}

async function load() {
	const code = codeFromHash();
	if (!code) {
		setStatus('Aucun code de billet dans l’adresse de cette page.',
		    'No ticket code in this page’s address.', 'bad');
		return;
	}
	try {
		render(await anonCall('voucher.get', { code }));
	} catch (e) {
		if (e.reason === 'not_found' || e.reason === 'invalid_params')
			setStatus('Ce bon n’est plus valable : la sortie a été ' +
			    'annulée, est passée, ou le code est inconnu. ' +
			    'Contactez la personne qui vous l’a remis.',
			    'This voucher is no longer valid: the outing was ' +
			    'cancelled or is over, or the code is unknown. ' +
			    'Ask the person who gave it to you.', 'bad');
		else if (e.reason === 'rate_limited')
			setStatus('Trop de demandes depuis cette connexion. ' +
			    `Réessayez dans ${e.data.retry_after_s || 60} s.`,
			    'Too many requests from this connection. ' +
			    `Try again in ${e.data.retry_after_s || 60} s.`, 'bad');
		else
			setStatus('Le service ne répond pas. Réessayez dans ' +
			    'un moment.', 'The service does not answer. Try ' +
			    'again in a moment.', 'bad');
	}
}

// A6 is a card (105 × 148 mm): a stylesheet of its own, linked while the
// box is ticked, sets the page size; the root's class shrinks the content.
const a6 = document.getElementById('a6');
a6.addEventListener('change', () => {
	document.documentElement.classList.toggle('print-a6', a6.checked);
	const link = document.getElementById('a6-sheet');
	if (a6.checked && !link)
		document.head.append(el('link', { id: 'a6-sheet', rel: 'stylesheet',
		    href: '/css/voucher-a6.css' }));
	else if (!a6.checked && link)
		link.remove();
});
document.getElementById('print').addEventListener('click', () => window.print());
window.addEventListener('hashchange', load);
load();
