/*
 * Harness: reading a ticket code as typed at a door (daemon/ticket.c).
 * Besides not crashing, the parser must agree with a second, plain
 * reading of the rules of docs/booking-rules.md written here, and a code
 * it accepts must read back as itself.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ticket.h"

/* The rules again, as simply as they can be said. */
static enum ticket_status
reference(const uint8_t *data, size_t size, char code[TICKET_LEN + 1])
{
	size_t i, n = 0;
	int sum = 0;
	char c;

	for (i = 0; i < size; i++) {
		c = (char)data[i];
		if (strchr(" \t\n\r\v\f-", c) != NULL && c != '\0')
			continue;
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c == 'U')
			return TICKET_LETTER_U;
		c = c == 'O' ? '0' : c == 'I' || c == 'L' ? '1' : c;
		if (c == '\0' || strchr(TICKET_ALPHABET, c) == NULL)
			return TICKET_BAD_CHAR;
		if (n < TICKET_LEN)
			code[n] = c;
		n++;
	}
	if (n != TICKET_LEN)
		return TICKET_LENGTH;
	code[TICKET_LEN] = '\0';
	for (i = 0; i < TICKET_LEN - 1; i++)
		sum += (int)(strchr(TICKET_ALPHABET, code[i]) -
		    TICKET_ALPHABET) * (int)(i + 1);
	return TICKET_ALPHABET[sum % 31] == code[TICKET_LEN - 1] ?
	    TICKET_OK : TICKET_CHECK;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[TICKET_DISPLAY_LEN + 1], again[TICKET_DISPLAY_LEN + 1];
	char code[TICKET_LEN + 1];
	enum ticket_status st, want;
	size_t i, j;

	memset(out, '?', sizeof out);
	st = ticket_parse((const char *)data, size, out);
	want = reference(data, size, code);
	if (st != want || ticket_reason(st) == NULL)
		abort();
	if (st != TICKET_OK) {
		/* out is left alone */
		for (i = 0; i < sizeof out; i++)
			if (out[i] != '?')
				abort();
		return 0;
	}
	/* XXXX-XXXX-XXXX-XXXX, the code's characters in order. */
	if (strlen(out) != TICKET_DISPLAY_LEN)
		abort();
	for (i = 0, j = 0; i < TICKET_DISPLAY_LEN; i++) {
		if (i % 5 == 4) {
			if (out[i] != '-')
				abort();
		} else if (out[i] != code[j++])
			abort();
	}
	if (ticket_parse(out, strlen(out), again) != TICKET_OK ||
	    strcmp(out, again) != 0)
		abort();
	return 0;
}
