/*
 * A small network for integration tests: two partners and two structures,
 * with an account of each role logged in, built through the API itself.
 */
#ifndef WORLD_H
#define WORLD_H

#include "harness.h"

#include <time.h>

struct world {
	struct h_daemon *d;
	struct st_client *admin;
	struct st_client *partner;      /* staff of partner_id */
	struct st_client *partner2;     /* staff of partner2_id */
	struct st_client *ref;          /* referent of structure_id */
	struct st_client *ref2;         /* referent of structure2_id */
	json_int_t partner_id, partner2_id;
	json_int_t structure_id, structure2_id;
	json_int_t partner_user, partner2_user, ref_user, ref2_user;
};

#define W_PARTNER_EMAIL "venue@example.org"
#define W_PARTNER2_EMAIL "venue2@example.org"
#define W_REF_EMAIL "ref@example.org"
#define W_REF2_EMAIL "ref2@example.org"
#define W_PASSWORD "a-good-password"

void world_build(struct world *w, struct h_daemon *d);
void world_close(struct world *w);

/* An RFC 3339 UTC time `seconds` from now (static buffer, 4 in rotation). */
const char *w_time(long long seconds);
/* t as RFC 3339 UTC text (static buffer, 8 in rotation). */
const char *w_iso(time_t t);
#define W_DAY (86400LL)

/* Publishes an offer (starting in 30 days unless starts_at given) and
 * returns its id. */
json_int_t w_offer(struct st_client *partner, int seats, int max_per_booking,
    const char *starts_at);
json_int_t w_beneficiary(struct st_client *ref, const char *first,
    const char *last);
/* booking.create; returns the booking (new reference). */
json_t *w_book(struct st_client *ref, json_int_t offer, json_int_t beneficiary,
    int seats);

/* Writes secret (mode 0600) to $ST_TEST_DIR/NAME.secret, for [privacy]
 * identity_secret_file, and returns its path (static buffer, 4 in
 * rotation). */
const char *w_secret_file(const char *name, const char *secret);

json_int_t w_int(const json_t *o, const char *key);
const char *w_str(const json_t *o, const char *key);

#endif
