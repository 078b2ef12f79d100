/*
 * After a booking run, the database must agree with what the clients were
 * told: the seats taken on the run's offers are the seats acknowledged
 * (docs/booking-rules.md invariant 3: an acknowledged booking is committed), and invariant 1 (docs/booking-rules.md) holds
 * for every offer in the database, by the rows themselves rather than by
 * the counters the triggers keep. Plain blocking libpq: this runs once,
 * after the load.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "bench.h"

/* For every offer: seats_taken is the seats of its live bookings plus the
 * unclaimed seats of its blocks not yet returned (schema 4's accounting)
 * plus the staff seats of its confirmed groups (schema 22), seats_held
 * the seats offered to its waitlist, and neither the counters nor the rows
 * go past seats_total. Answers the number of offers, of
 * offers breaking a rule, and the first of those. */
static const char sql_spec_6_1[] =
    "WITH live AS ("
    "  SELECT offer_id, sum(seats) AS seats FROM bookings"
    "   WHERE status IN ('confirmed', 'attended', 'no_show')"
    "   GROUP BY offer_id),"
    " blocks AS ("
    "  SELECT offer_id, sum(seats - claimed) AS seats FROM permanence_blocks"
    "   WHERE returned_at IS NULL GROUP BY offer_id),"
    " staff AS ("
    "  SELECT offer_id, sum(staff_seats) AS seats FROM booking_groups"
    "   WHERE status = 'confirmed' GROUP BY offer_id),"
    " held AS ("
    "  SELECT offer_id, sum(seats) AS seats FROM waitlist_entries"
    "   WHERE status = 'offered' GROUP BY offer_id),"
    " checked AS ("
    "  SELECT o.id, o.seats_taken <> coalesce(l.seats, 0) + coalesce(b.seats, "
    "0) + coalesce(s.seats, 0)"
    "      OR o.seats_held <> coalesce(h.seats, 0)"
    "      OR o.seats_taken + o.seats_held > o.seats_total"
    "      OR coalesce(l.seats, 0) + coalesce(b.seats, 0) + coalesce(s.seats, 0)"
    "         > o.seats_total"
    "      AS bad"
    "    FROM offers o LEFT JOIN live l ON l.offer_id = o.id"
    "    LEFT JOIN blocks b ON b.offer_id = o.id"
    "    LEFT JOIN staff s ON s.offer_id = o.id"
    "    LEFT JOIN held h ON h.offer_id = o.id)"
    " SELECT count(*), count(*) FILTER (WHERE bad),"
    "        coalesce(min(id) FILTER (WHERE bad), 0)"
    "   FROM checked";

/* The run's offers: seats taken and held by their counters, their live
 * bookings by the rows (count, seats, duplicate ticket codes), and their
 * confirmed groups (count, staff seats). */
static const char sql_run[] =
    "SELECT (SELECT coalesce(sum(seats_taken), 0) FROM offers"
    "         WHERE id = ANY($1::bigint[])),"
    "       (SELECT coalesce(sum(seats_held), 0) FROM offers"
    "         WHERE id = ANY($1::bigint[])),"
    "       count(*), coalesce(sum(seats), 0),"
    "       count(*) - count(DISTINCT code),"
    "       (SELECT count(*) FROM booking_groups"
    "         WHERE offer_id = ANY($1::bigint[]) AND status = 'confirmed'),"
    "       (SELECT coalesce(sum(staff_seats), 0) FROM booking_groups"
    "         WHERE offer_id = ANY($1::bigint[]) AND status = 'confirmed')"
    "  FROM bookings WHERE offer_id = ANY($1::bigint[])"
    "   AND status IN ('confirmed', 'attended', 'no_show')";

/* "{1,2,3}" */
static char *
id_array(const int64_t *ids, int n)
{
	size_t len = 3 + (size_t)n * 21, off = 0;
	char *s;
	int i;

	if ((s = malloc(len)) == NULL)
		return NULL;
	s[off++] = '{';
	for (i = 0; i < n; i++)
		off += (size_t)snprintf(s + off, len - off, "%s%lld",
					i ? "," : "", (long long)ids[i]);
	snprintf(s + off, len - off, "}");
	return s;
}

static long long
val(PGresult *r, int col)
{
	return strtoll(PQgetvalue(r, 0, col), NULL, 10);
}

int
bench_verify(const struct bench_config *cfg, const struct bench_fixture *fx,
	     const struct bench_result *res)
{
	const struct bench_stats *st = &res->st;
	PGconn *db = NULL;
	PGresult *r1 = NULL, *r2 = NULL;
	const char *params[1];
	char *ids = NULL, why[512] = "";
	long long taken, held, nbookings, bseats, dupcodes, ngroups, staff,
	    noffers, nbad, firstbad;
	int ret = 2;
	size_t off = 0;

	if (cfg->db == NULL) {
		printf("verdict: not checked (no --db)\n");
		return 0;
	}
	db = PQconnectdb(cfg->db);
	if (PQstatus(db) != CONNECTION_OK) {
		printf("verdict: not checked: database: %s",
		       PQerrorMessage(db));
		goto out;
	}
	if ((ids = id_array(fx->offers, fx->noffers)) == NULL) {
		printf("verdict: not checked: out of memory\n");
		goto out;
	}
	params[0] = ids;
	r1 = PQexecParams(db, sql_run, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r1) != PGRES_TUPLES_OK || PQntuples(r1) != 1) {
		printf("verdict: not checked: %s", PQerrorMessage(db));
		goto out;
	}
	r2 = PQexec(db, sql_spec_6_1);
	if (PQresultStatus(r2) != PGRES_TUPLES_OK || PQntuples(r2) != 1) {
		printf("verdict: not checked: %s", PQerrorMessage(db));
		goto out;
	}
	taken = val(r1, 0);
	held = val(r1, 1);
	nbookings = val(r1, 2);
	bseats = val(r1, 3);
	dupcodes = val(r1, 4);
	ngroups = val(r1, 5);
	staff = val(r1, 6);
	noffers = val(r2, 0);
	nbad = val(r2, 1);
	firstbad = val(r2, 2);

	/* Seats whose booking's fate is unknown (lost connection, timeout)
	 * may or may not be taken: then taken must lie between. */
	if (taken < st->seats_acked ||
	    taken > st->seats_acked + st->seats_unknown)
		off += (size_t)snprintf(
		    why + off, sizeof why - off,
		    "; seats taken %lld but %lld acknowledged (%lld unknown)",
		    taken, (long long)st->seats_acked,
		    (long long)st->seats_unknown);
	if (bseats + staff != taken || held != 0)
		off += (size_t)snprintf(
		    why + off, sizeof why - off,
		    "; the run's offers count %lld seats taken and %lld held "
		    "but their live bookings hold %lld and their groups' staff "
		    "%lld",
		    taken, held, bseats, staff);
	/* The groups the clients were told of hold their staff seats. */
	if (st->seats_unknown == 0 && staff != st->staff_acked)
		off += (size_t)snprintf(
		    why + off, sizeof why - off,
		    "; the run's groups hold %lld staff seats but %lld were "
		    "acknowledged",
		    staff, (long long)st->staff_acked);
	if (dupcodes != 0)
		off +=
		    (size_t)snprintf(why + off, sizeof why - off,
				     "; %lld duplicate ticket codes", dupcodes);
	if (nbad != 0)
		off += (size_t)snprintf(
		    why + off, sizeof why - off,
		    "; invariant 1 (docs/booking-rules.md) broken for %lld of %lld offers (first: "
		    "offer %lld)",
		    nbad, noffers, firstbad);
	if (off == 0) {
		char groups[96] = "";

		if (ngroups > 0)
			snprintf(groups, sizeof groups,
				 ", %lld groups holding %lld staff seats",
				 ngroups, staff);
		printf("verdict: OK: seats taken %lld = seats acknowledged "
		       "%lld%s (%lld bookings%s); invariant 1 (docs/booking-rules.md) holds for all %lld "
		       "offers\n",
		       taken, (long long)st->seats_acked,
		       st->seats_unknown ? " + part of the unknown" : "",
		       nbookings, groups, noffers);
		ret = 0;
	} else {
		printf("verdict: FAIL:%s\n", why + 1);
		ret = 1;
	}
out:
	fflush(stdout);
	PQclear(r1);
	PQclear(r2);
	PQfinish(db);
	free(ids);
	return ret;
}
