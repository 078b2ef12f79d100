/*
 * The methods of identity keys (docs/privacy.md, "One person, several
 * structures"; docs/protocol.md): the daemon turns what the referent typed
 * into the key (idkey.c) and hands SQL the key alone, never the names or
 * the birth date.
 */
#ifndef IDENTITY_H
#define IDENTITY_H

struct request;

/* beneficiary.set_identity: params last_name, first_name, birth_date and
 * consent become identity_key and identity_secret_id (and previous_key,
 * previous_secret_id during a rotation) for api.beneficiary_set_identity. */
void identity_set(struct request *req);
/* identity.status: adds the ids of the secrets in use to the params of
 * api.identity_status. */
void identity_status(struct request *req);

#endif
