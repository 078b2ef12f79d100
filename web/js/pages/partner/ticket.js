// Ticket codes as a person types them at the door: the same reading as
// daemon/ticket.c (docs/booking-rules.md, "Tickets"), so that the page
// can say what is wrong with a mistyped code before asking the server.
// Blanks and dashes do not count, case does not matter, O is read as 0,
// I and L as 1; U never appears in a code.

export const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
export const LENGTH = 16;

function value(c) {
	c = c.toUpperCase();
	if (c === 'O')
		c = '0';
	else if (c === 'I' || c === 'L')
		c = '1';
	return ALPHABET.indexOf(c);
}

// The sum of each character's value times its position (1 to 15), modulo
// 31, as ticket_check_char() computes it.
export function checkChar(body) {
	let sum = 0;
	for (let i = 0; i < LENGTH - 1; i++)
		sum += Math.max(value(body[i]), 0) * (i + 1);
	return ALPHABET[sum % 31];
}

// parseTicket(' p676-zts8 o4wg 94kf ') → {ok: true, code: 'P676-ZTS8-04WG-94KF'}
// or {ok: false, reason: 'letter_u' | 'bad_char' | 'length' | 'check'}.
export function parseTicket(input) {
	let code = '';
	let n = 0;
	for (const c of String(input)) {
		if (/[\s-]/.test(c))
			continue;
		if (c === 'U' || c === 'u')
			return { ok: false, reason: 'letter_u' };
		const v = value(c);
		if (v < 0)
			return { ok: false, reason: 'bad_char', char: c };
		if (n < LENGTH)
			code += ALPHABET[v];
		n++;
	}
	if (n !== LENGTH)
		return { ok: false, reason: 'length', count: n };
	if (checkChar(code) !== code[LENGTH - 1])
		return { ok: false, reason: 'check' };
	return { ok: true, code: code.match(/.{4}/g).join('-') };
}

// What a QR code holds: the code itself, or a link whose fragment is the
// code (/voucher.html#CODE). Returns the text to read as a code.
export function codeFromScan(text) {
	const s = String(text).trim();
	const hash = s.lastIndexOf('#');
	return hash >= 0 ? s.slice(hash + 1) : s;
}
