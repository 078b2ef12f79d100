#include "ticket.h"

#include <string.h>

/* A character's value in the alphabet, after folding (lower case, the
 * look-alikes O, I, L); -1 if it has none. */
static int
ticket_value(unsigned char c)
{
	const char *p;

	if (c >= 'a' && c <= 'z')
		c = (unsigned char)(c - 'a' + 'A');
	if (c == 'O')
		c = '0';
	else if (c == 'I' || c == 'L')
		c = '1';
	/* strchr() would find the alphabet's terminating NUL. */
	if (c == '\0' || (p = strchr(TICKET_ALPHABET, c)) == NULL)
		return -1;
	return (int)(p - TICKET_ALPHABET);
}

/* What the SQL removes before reading a code: \s and '-'. */
static int
ticket_ignored(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
	    c == '\v' || c == '\f' || c == '-';
}

char
ticket_check_char(const char *body)
{
	unsigned sum = 0;
	int i, v;

	for (i = 0; i < TICKET_LEN - 1; i++) {
		v = ticket_value((unsigned char)body[i]);
		sum += (unsigned)(v < 0 ? 0 : v) * (unsigned)(i + 1);
	}
	return TICKET_ALPHABET[sum % 31];
}

enum ticket_status
ticket_parse(const char *input, size_t len, char out[TICKET_DISPLAY_LEN + 1])
{
	char code[TICKET_LEN];
	size_t i, n = 0;
	int v, j;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)input[i];

		if (ticket_ignored(c))
			continue;
		if (c == 'U' || c == 'u')
			return TICKET_LETTER_U;
		if ((v = ticket_value(c)) < 0)
			return TICKET_BAD_CHAR;
		/* Past 16 only the count matters, to say "length". */
		if (n < TICKET_LEN)
			code[n] = TICKET_ALPHABET[v];
		n++;
	}
	if (n != TICKET_LEN)
		return TICKET_LENGTH;
	if (ticket_check_char(code) != code[TICKET_LEN - 1])
		return TICKET_CHECK;
	for (i = 0, j = 0; i < TICKET_LEN; i++) {
		if (i > 0 && i % 4 == 0)
			out[j++] = '-';
		out[j++] = code[i];
	}
	out[j] = '\0';
	return TICKET_OK;
}

const char *
ticket_reason(enum ticket_status status)
{
	switch (status) {
	case TICKET_OK:
		return "Code de billet valide / valid ticket code";
	case TICKET_BAD_CHAR:
		return "Code de billet invalide (caractère non autorisé) / "
		    "invalid ticket code (character not allowed)";
	case TICKET_LETTER_U:
		return "Code de billet invalide (la lettre U n'y figure "
		    "jamais) / invalid ticket code (there is never a U)";
	case TICKET_LENGTH:
		return "Code de billet invalide (16 caractères attendus) / "
		    "invalid ticket code (16 characters expected)";
	case TICKET_CHECK:
		return "Code de billet invalide (caractère de contrôle) / "
		    "invalid ticket code (check character)";
	}
	return "Code de billet invalide / invalid ticket code";
}
