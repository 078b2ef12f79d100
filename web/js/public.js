// The public page of a structure's permanences (/public.html#STRUCTURE_ID):
// the upcoming drop-in sessions, where, and what to bring, for people to
// read on their phone or on the poster printed from it, with a link to the
// calendar (/p/ID.ics). Nothing on it is personal (permanence.public_list).
import { anonCall, longDate, hourMinute, dayKey, el, bilingual }
    from './capability.js';

const main = document.getElementById('main');

function heading(structure) {
	return el('h1', {}, 'Permanences sorties culturelles',
	    structure ? el('span', { class: 'where' },
		[structure.name, structure.town].filter((x) => x).join(', '))
		: null,
	    el('span', { lang: 'en', class: 'en' },
		'Cultural outings drop-in sessions'));
}

function setStatus(fr, en) {
	main.replaceChildren(heading(null),
	    el('p', { class: 'status bad', role: 'alert' }, ...bilingual(fr, en)));
}

// "de 14:30 à 17:30", or "à 14:30" when the end is unknown or another day.
function hours(p) {
	const start = hourMinute(p.starts_at);
	if (p.ends_at && dayKey(p.ends_at) === dayKey(p.starts_at))
		return `de ${start} à ${hourMinute(p.ends_at)}`;
	return `à ${start}`;
}

function item(p) {
	return el('li', { class: 'perm' },
	    el('p', { class: 'date' },
		el('time', { datetime: p.starts_at }, longDate(p.starts_at))),
	    el('p', { class: 'hours' }, hours(p)),
	    p.place ? el('p', { class: 'place' }, p.place) : null,
	    p.notes ? el('p', { class: 'notes' },
		el('span', { class: 'label' }, 'À apporter, à savoir : '),
		p.notes) : null);
}

function render(r, id) {
	const s = r.structure;
	document.title = `Permanences · ${s.name}`;
	const parts = [heading(s),
	    el('p', { class: 'intro' }, ...bilingual(
		'Venez rencontrer votre référent pour choisir une sortie ' +
		'(spectacle, musée, cinéma, sport…) : les places sont ' +
		'gratuites.',
		'Come and meet your social worker to choose a free outing ' +
		'(show, museum, cinema, sport…).'))];
	if (r.items.length === 0)
		parts.push(el('p', { class: 'status' }, ...bilingual(
		    'Aucune permanence prévue pour le moment.',
		    'No session planned for now.')));
	else
		parts.push(el('ol', { class: 'perms' }, ...r.items.map(item)));
	parts.push(el('p', { class: 'ics no-print' },
	    el('a', { href: `/p/${id}.ics`, download: `permanences-${id}.ics` },
		'Ajouter les permanences à mon agenda (.ics)'), ' ',
	    el('span', { lang: 'en', class: 'en' },
		'Add the sessions to my calendar')));
	main.replaceChildren(...parts);
}

async function load() {
	const id = Number(location.hash.replace(/^#/, ''));
	if (!Number.isSafeInteger(id) || id < 1) {
		setStatus('Adresse incomplète : il manque le numéro de la ' +
		    'structure.', 'Incomplete address: the structure’s ' +
		    'number is missing.');
		return;
	}
	try {
		render(await anonCall('permanence.public_list',
		    { structure_id: id }), id);
	} catch (e) {
		if (e.reason === 'not_found' || e.reason === 'invalid_params')
			setStatus('Cette structure est inconnue.',
			    'This structure is unknown.');
		else
			setStatus('Le service ne répond pas. Réessayez dans ' +
			    'un moment.', 'The service does not answer. Try ' +
			    'again in a moment.');
	}
}

document.getElementById('print').addEventListener('click', () => window.print());
window.addEventListener('hashchange', load);
load();
