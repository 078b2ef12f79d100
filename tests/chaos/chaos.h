/*
 * Helpers for the fault-injection cases (see docs/chaos.md): a private
 * PostgreSQL cluster that a case may crash or freeze, a booking load that
 * runs in threads while the fault happens, and the check, from the
 * database's rows, that nothing acknowledged was lost and nothing is
 * overbooked.
 *
 * Like the harness, these helpers fail the running cmocka test on error;
 * the load threads never do (cmocka is not thread-safe): they count and
 * keep the first unexpected answer for the test to report.
 */
#ifndef CHAOS_H
#define CHAOS_H

#include <pthread.h>
#include <stdatomic.h>

#include "world.h"

/* A cluster of the case's own, made by scripts/pg-tmp under
 * $ST_TEST_DIR/run/NAME, with a database "strapontin". */
struct chaos_pg {
	char dir[600];
	char conninfo[1024]; /* with dbname=strapontin */
	bool started;
};

void chaos_pg_start(struct chaos_pg *pg, const char *name);
/* Stops and removes it; fine on a cluster never started. */
void chaos_pg_stop(struct chaos_pg *pg);
/* `pg_ctl stop -m immediate`: every server process quits at once, as in a
 * crash; the next start runs crash recovery. */
void chaos_pg_crash(struct chaos_pg *pg);
/* Starts a crashed cluster again, same port. */
void chaos_pg_resume(struct chaos_pg *pg);
/* SIGSTOP (freeze true) or SIGCONT every process of the cluster: the
 * server stalls with its connections open. */
void chaos_pg_freeze(struct chaos_pg *pg, bool freeze);
/* "[database]\nconninfo = ...\n" followed by more: an extra_ini for
 * h_daemon_start() that points the daemon at this cluster. Static. */
const char *chaos_pg_ini(const struct chaos_pg *pg, const char *more);

/* A booking the daemon acknowledged: a result with an id and a code. */
struct chaos_ack {
	json_int_t id;
	char code[32];
	int seats;
};

/* What the load threads saw. */
struct chaos_tally {
	int ok;		 /* acknowledged */
	int unavailable; /* 503 unavailable */
	int sold_out;
	int lost;	/* connection lost or refused (then retried elsewhere) */
	int hung;	/* no answer within the client's timeout */
	int other;	/* any other answer: a failure */
	char first_bad[600]; /* the first hung or other answer */
};

#define CHAOS_MAX_THREADS 16
#define CHAOS_MAX_DAEMONS 2

/* Bookings from several threads, each on its own connection, resumed with
 * token, until chaos_load_stop() or every (offer, beneficiary) pair was
 * tried once. A thread whose connection is lost or refused goes on with
 * the next daemon, as a client with a list of servers would. */
struct chaos_load {
	/* Set by the caller before chaos_load_start(). */
	struct st_options opt[CHAOS_MAX_DAEMONS];
	int ndaemons;
	char token[128];
	const json_int_t *offers;
	int noffers;
	const json_int_t *beneficiaries;
	int nbeneficiaries;
	int threads;
	int pause_ms; /* between two requests of one thread */

	/* Internal, and the outcome once stopped. */
	pthread_t tid[CHAOS_MAX_THREADS];
	atomic_int next;
	atomic_bool stop;
	pthread_mutex_t lock; /* guards what follows */
	struct chaos_tally tally;
	struct chaos_ack *acks;
	size_t nacks, cap;
};

void chaos_load_start(struct chaos_load *l);
/* Stops the threads, waits for them, and fails the test if any request
 * hung or got an answer other than a booking, unavailable or sold_out. */
void chaos_load_stop(struct chaos_load *l);
void chaos_load_free(struct chaos_load *l);
/* Acknowledged so far, and the whole tally so far, while it runs. */
int chaos_load_acked(struct chaos_load *l);
struct chaos_tally chaos_load_tally(struct chaos_load *l);

/* From the rows, on a direct connection to conninfo: every acknowledged
 * booking exists with its code and is confirmed, and for every offer the
 * live bookings' seats equal offers.seats_taken and fit in seats_total
 * (the cases make no permanence blocks and no waitlist entries). Also
 * that ticket codes are unique. */
void chaos_check_rows(const char *conninfo, const struct chaos_ack *acks,
    size_t nacks);

/* Waits up to timeout_ms until one new booking through d succeeds (the
 * service is back); fails the test otherwise. Returns it as an ack. */
struct chaos_ack chaos_book_until_ok(const struct h_daemon *d,
    const char *token, json_int_t offer, json_int_t beneficiary,
    int timeout_ms);

/* A referent session's token, logged in through d. Static. */
const char *chaos_ref_token(const struct h_daemon *d);

/* A scene for the cases: ndaemons daemons on one database (the case's own
 * cluster when pg is not NULL, else the shared one), a world (world.h),
 * CHAOS_OFFERS offers of CHAOS_SEATS seats (at most 2 a booking),
 * CHAOS_BENEFICIARIES beneficiaries for the load, and a spare offer with
 * spare beneficiaries for the recovery checks. Policy caps are raised so
 * that only seats refuse a booking. */
#define CHAOS_OFFERS 20
#define CHAOS_SEATS 40
#define CHAOS_BENEFICIARIES 100
#define CHAOS_SPARES 8
struct chaos_scene {
	struct chaos_pg *pg;
	struct h_daemon *d[CHAOS_MAX_DAEMONS];
	int ndaemons;
	const char *conninfo; /* the database, for chaos_check_rows */
	struct world w;
	json_int_t offers[CHAOS_OFFERS];
	json_int_t beneficiaries[CHAOS_BENEFICIARIES];
	json_int_t spare_offer;
	json_int_t spares[CHAOS_SPARES];
	int spares_used;
	char token[128];
	/* Bookings acknowledged outside the load (chaos_scene_recovered). */
	struct chaos_ack extra[CHAOS_SPARES];
};

/* Daemons are named NAME1, NAME2; more_ini goes into their configuration. */
void chaos_scene_build(struct chaos_scene *s, const char *name, int ndaemons,
    struct chaos_pg *pg, const char *more_ini);
/* A load over the scene's daemons and pairs. */
void chaos_load_init(struct chaos_load *l, const struct chaos_scene *s,
    int threads, int pause_ms);
/* Waits up to timeout_ms for a booking through daemon i to succeed. */
void chaos_scene_recovered(struct chaos_scene *s, int i, int timeout_ms);
/* chaos_check_rows() for the load's and the recovery checks' bookings. */
void chaos_scene_check(struct chaos_scene *s, const struct chaos_load *l);
/* Closes the world's clients; daemons are stopped by the case. */
void chaos_scene_close(struct chaos_scene *s);

/* Resident memory of a process in KiB, from /proc. */

#endif
