#include "world.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>

json_int_t
w_int(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v))
		h_fail("%s is not an integer in %s", key, h_json_str(o));
	return json_integer_value(v);
}

const char *
w_str(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_string(v))
		h_fail("%s is not a string in %s", key, h_json_str(o));
	return json_string_value(v);
}

const char *
w_iso(time_t t)
{
	static char bufs[8][32];
	static int next;
	char *b = bufs[next++ % 8];
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(b, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return b;
}

const char *
w_time(long long seconds)
{
	return w_iso(time(NULL) + (time_t)seconds);
}

static json_int_t
create_id(struct st_client *c, const char *method, json_t *params)
{
	json_t *r = h_call_ok(c, method, params);
	json_int_t id = w_int(r, "id");

	json_decref(r);
	return id;
}

void
world_build(struct world *w, struct h_daemon *d)
{
	memset(w, 0, sizeof *w);
	w->d = d;
	w->admin = h_login_admin(d);
	w->partner_id = create_id(w->admin, "partner.create", json_pack(
	    "{s:s, s:s, s:s}", "name", "Musée de la céramique", "kind",
	    "museum", "city", "Lezoux"));
	w->partner2_id = create_id(w->admin, "partner.create", json_pack(
	    "{s:s, s:s, s:s}", "name", "Domaine royal de Randan", "kind",
	    "heritage", "city", "Randan"));
	w->structure_id = create_id(w->admin, "structure.create", json_pack(
	    "{s:s, s:s, s:s, s:s}", "name", "MDS de Billom", "kind", "mds",
	    "territory", "Puy-de-Dôme", "city", "Billom"));
	w->structure2_id = create_id(w->admin, "structure.create", json_pack(
	    "{s:s, s:s, s:s, s:s}", "name", "CCAS de Brive", "kind", "ccas",
	    "territory", "Corrèze", "city", "Brive-la-Gaillarde"));
	w->partner_user = create_id(w->admin, "user.create", json_pack(
	    "{s:s, s:s, s:s, s:s, s:I}", "email", W_PARTNER_EMAIL,
	    "display_name", "Billetterie", "role", "partner", "password",
	    W_PASSWORD, "partner_id", w->partner_id));
	w->partner2_user = create_id(w->admin, "user.create", json_pack(
	    "{s:s, s:s, s:s, s:s, s:I}", "email", W_PARTNER2_EMAIL,
	    "display_name", "Accueil Randan", "role", "partner", "password",
	    W_PASSWORD, "partner_id", w->partner2_id));
	w->ref_user = create_id(w->admin, "user.create", json_pack(
	    "{s:s, s:s, s:s, s:s, s:I}", "email", W_REF_EMAIL,
	    "display_name", "Claire", "role", "referent", "password",
	    W_PASSWORD, "structure_id", w->structure_id));
	w->ref2_user = create_id(w->admin, "user.create", json_pack(
	    "{s:s, s:s, s:s, s:s, s:I}", "email", W_REF2_EMAIL,
	    "display_name", "Paul", "role", "referent", "password",
	    W_PASSWORD, "structure_id", w->structure2_id));
	w->partner = h_login(d, W_PARTNER_EMAIL, W_PASSWORD);
	w->partner2 = h_login(d, W_PARTNER2_EMAIL, W_PASSWORD);
	w->ref = h_login(d, W_REF_EMAIL, W_PASSWORD);
	w->ref2 = h_login(d, W_REF2_EMAIL, W_PASSWORD);
}

void
world_close(struct world *w)
{
	st_close(w->admin);
	st_close(w->partner);
	st_close(w->partner2);
	st_close(w->ref);
	st_close(w->ref2);
}

json_int_t
w_offer(struct st_client *partner, int seats, int max_per_booking,
    const char *starts_at)
{
	return create_id(partner, "offer.publish", json_pack(
	    "{s:s, s:s, s:s, s:s, s:s, s:i, s:i}", "title", "Visite guidée",
	    "category", "museum", "venue", "Musée de la céramique", "city",
	    "Lezoux", "starts_at", starts_at ? starts_at : w_time(30 * W_DAY),
	    "seats", seats, "max_per_booking", max_per_booking));
}

json_int_t
w_beneficiary(struct st_client *ref, const char *first, const char *last)
{
	return create_id(ref, "beneficiary.create", json_pack(
	    "{s:s, s:s, s:b}", "first_name", first, "last_name", last,
	    "consent", 1));
}

json_t *
w_book(struct st_client *ref, json_int_t offer, json_int_t beneficiary,
    int seats)
{
	return h_call_ok(ref, "booking.create", json_pack("{s:I, s:I, s:i}",
	    "offer_id", offer, "beneficiary_id", beneficiary, "seats", seats));
}

const char *
w_secret_file(const char *name, const char *secret)
{
	static char bufs[4][600];
	static int next;
	char *path = bufs[next++ % 4];
	FILE *f;

	snprintf(path, sizeof bufs[0], "%s/%s.secret", h_test_dir(), name);
	if ((f = fopen(path, "w")) == NULL || fputs(secret, f) == EOF ||
	    fclose(f) != 0 || chmod(path, 0600) != 0)
		h_fail("cannot write %s", path);
	return path;
}
