/* Ticket codes as a person types them at a door (docs/booking-rules.md,
 * "Tickets"): 16 characters of Crockford's base32, the last a check
 * character, shown as XXXX-XXXX-XXXX-XXXX. This module depends on nothing
 * else, so that the CLI can refuse a mistyped code before sending it. */
#ifndef TICKET_H
#define TICKET_H

#include <stddef.h>

#define TICKET_ALPHABET "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#define TICKET_LEN 16           /* characters, as stored */
#define TICKET_DISPLAY_LEN 19   /* XXXX-XXXX-XXXX-XXXX */

enum ticket_status {
	TICKET_OK,
	TICKET_BAD_CHAR,  /* a character outside the alphabet */
	TICKET_LETTER_U,  /* U, which Crockford's base32 leaves out */
	TICKET_LENGTH,    /* not 16 characters once blanks and dashes go */
	TICKET_CHECK,     /* the check character does not match */
};

/* Reads len bytes of input: case, blanks and dashes do not matter, O is
 * read as 0, I and L as 1. On TICKET_OK, out holds the code as the server
 * shows it, "XXXX-XXXX-XXXX-XXXX" and a NUL; otherwise out is untouched. */
enum ticket_status ticket_parse(const char *input, size_t len,
    char out[TICKET_DISPLAY_LEN + 1]);

/* The check character of a body of 15 characters of the alphabet: the
 * sum of each character's value times its position (1 to 15), modulo 31,
 * as sql/api/40_bookings.sql's ticket_check_char() computes it. */
char ticket_check_char(const char *body);

/* Why a code was refused, for people: French, then English. */
const char *ticket_reason(enum ticket_status status);

#endif
