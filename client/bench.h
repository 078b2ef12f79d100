/*
 * strapontin-bench: a load generator for strapontind, in the manner of
 * pgbench and redis-benchmark. bench.c reads the options and prints the
 * report; bench_fixture.c builds the data a workload needs through the API;
 * bench_run.c drives the connections; bench_verify.c checks the database
 * afterwards.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stdbool.h>
#include <stdint.h>

#include "strapontin.h"

enum bench_workload {
	BW_PING,
	BW_OFFER_LIST,
	BW_BOOK_UNIFORM,
	BW_BOOK_HOT,
	BW_BOOK_GROUP,
};

/* book-uniform spreads its requests over the (offer, beneficiary) pairs
 * with a permutation: request k books pair (k * stride) mod pairs, offer
 * pair % offers and beneficiary pair / offers, so no pair is booked twice
 * until every pair was. The stride is the first integer from pairs x 0.618
 * (the golden ratio's fractional part) that is coprime with pairs, so that
 * requests in flight together fall on different offers and different
 * beneficiaries and do not queue behind each other's row locks, as random
 * requests would not. bench/compare-pgbench gives pgbench the same stride.
 * pairs is at most BENCH_MAX_PAIRS, so k * stride fits in 64 bits. */
#define BENCH_MAX_FIXTURE 100000
#define BENCH_MAX_PAIRS (1LL << 31)

/* The stride for this many pairs (>= 1). */
int64_t bench_stride(int64_t pairs);

struct bench_config {
	struct st_options opt;
	char host[256];
	char port[16];
	const char *server; /* as given, for the report */
	const char *admin_email;
	char password[1024];
	enum bench_workload workload;
	int clients;	   /* -c */
	int threads;	   /* -j */
	int pipeline;	   /* -P */
	double seconds;	   /* -T, 0: no time limit */
	int64_t requests;  /* -n, 0: no count limit; with -T, whichever
			      comes first ends the run */
	int offers;	   /* offers in the fixture */
	int beneficiaries; /* beneficiaries in the fixture */
	int seats;	   /* seats of each offer (0: the default) */
	int list_limit;	   /* offer.list's limit */
	const char *db;	   /* --db conninfo, or NULL */
	bool bulk_beneficiaries; /* made by one INSERT through --db */
	int identity_pct;  /* --identity: -1 none, else the share (%) of
			      beneficiaries whose key a second record of
			      another structure holds too */
	int group_size;	   /* book-group: people per group */
	int staff_seats;   /* book-group: staff seats per group */
	char tag[64];	   /* names this run's fixture */
	bool setup_only;
	bool quiet;
};

/* What bench_fixture_build() made. Ids are in increasing order. */
struct bench_fixture {
	int64_t partner_id;
	int64_t structure_id;
	int64_t referent_id; /* the referent's user id */
	char referent_email[160];
	char token[256]; /* the referent's session */
	int64_t *offers;
	int noffers;
	int64_t *beneficiaries;
	int nbeneficiaries;
	int seats;	/* seats of each offer */
	int64_t stride; /* see bench_stride() */
	/* --identity: every beneficiary has a key; twins[j], a record of
	 * a second structure, holds the key of beneficiaries[twin_of[j]]. */
	bool identity;
	int64_t structure2_id;
	int64_t *twins;
	int *twin_of;
	int ntwins;
	/* book-group: group g is beneficiaries[g * group_size ...]. */
	int group_size;
	int staff_seats;
	int ngroups;
};

/* Counters of one thread, then of the whole run once merged. */
struct bench_stats {
	uint32_t *lat_us; /* one latency per answered request */
	size_t nlat, cap;
	int64_t ok;	 /* answered with a result */
	int64_t refused; /* answered with an error the workload
			    expects (booking refusals) */
	int64_t refused_sold_out, refused_duplicate, refused_limit,
	    refused_other;
	int64_t errors;	       /* anything else: error answers, lost
				  connections, timeouts */
	int64_t seats_acked;   /* seats of acknowledged bookings, staff
				  seats of groups included */
	int64_t staff_acked;   /* of which staff seats */
	int64_t seats_unknown; /* seats of bookings whose fate is not
				  known (connection lost, timeout,
				  internal error) */
	char first_error[256];
};

struct bench_result {
	struct bench_stats st;
	double elapsed_s; /* first send to last answer */
	double cpu_user_s, cpu_sys_s;
};

const char *bench_workload_name(enum bench_workload w);
bool bench_is_booking(enum bench_workload w);

/* Builds the fixture through the API (admin login). 0, or -1 with a
 * message on stderr. */
int bench_fixture_build(const struct bench_config *cfg,
			struct bench_fixture *fx);
/* Prints it as "fixture: key=value ..." lines (for --setup-only and the
 * compare script). */
void bench_fixture_print(const struct bench_fixture *fx);
/* Ends the referent's session (the fixture's data stays). */
void bench_fixture_logout(const struct bench_config *cfg,
			  const struct bench_fixture *fx);
void bench_fixture_free(struct bench_fixture *fx);

/* Runs the workload; 0, or -1 if the run could not start (message on
 * stderr). Errors during the run are counted, not fatal. */
int bench_run(const struct bench_config *cfg, const struct bench_fixture *fx,
	      struct bench_result *res);

/* Checks the database after a booking run: 0 the invariants hold, 1 they
 * do not, 2 the check could not be made. Prints a "verdict:" line. */
int bench_verify(const struct bench_config *cfg, const struct bench_fixture *fx,
		 const struct bench_result *res);

void bench_stats_free(struct bench_stats *st);

uint64_t bench_now_us(void);
void bench_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
