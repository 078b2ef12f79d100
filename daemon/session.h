/*
 * Who is calling: the roles of docs/roles.md and the session a login, a
 * token or a client certificate binds to a caller. Plain data, shared by
 * the protocol layer (which carries it with each peer) and the
 * application layer (which binds it and checks roles with it).
 */
#ifndef SESSION_H
#define SESSION_H

#include <stdbool.h>
#include <stdint.h>

/* Bits, so that a method can allow several. */
enum role {
	ROLE_ANON = 0x1,
	ROLE_ADMIN = 0x2,
	ROLE_PARTNER = 0x4,
	ROLE_REFERENT = 0x8,
};
#define ROLES_USERS (ROLE_ADMIN | ROLE_PARTNER | ROLE_REFERENT)
#define ROLES_ALL (ROLE_ANON | ROLES_USERS)

struct session {
	bool bound;
	bool by_certificate;    /* bound by a client certificate */
	int64_t user_id;
	enum role role;
	int64_t partner_id;     /* 0 if none */
	int64_t structure_id;   /* 0 if none */
	char token_hash[65];    /* hex SHA-256 of the token */
};

/* The one table of role names (as the SQL and docs/roles.md spell them). */
enum role role_from_name(const char *name);
const char *role_name(enum role role);

#endif
