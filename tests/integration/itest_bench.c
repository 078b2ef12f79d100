/*
 * strapontin-bench end to end: the built binary runs each workload for a
 * few hundred requests against a harness daemon, builds its own fixture
 * through the API, and for the booking workloads checks the database and
 * says so. Functional only: no speed is asserted.
 */
#include "harness.h"
#include "world.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUN_TIMEOUT_MS 120000
#define MAX_ARGS 40

static struct h_daemon *d;      /* caps raised, as for a benchmark, and
				   identity keys enabled */
static struct h_daemon *d_caps; /* the default caps (2) */

struct run {
	int status;       /* exit status, or -1 if killed */
	char out[16384];  /* stdout and stderr */
};

/* Runs strapontin-bench against daemon dd with the common options
 * (server, CA, admin, database) then args (NULL-terminated), the admin's
 * password in STRAPONTIN_PASSWORD; at most RUN_TIMEOUT_MS. */
static void
run_bench(struct run *r, const struct h_daemon *dd, const char *const *args)
{
	char bin[1024], server[64], ca[1024];
	const char *argv[MAX_ARGS];
	int pfd[2], n = 0, st, i;
	size_t len = 0;
	pid_t pid;
	struct timespec t0, t1;

	snprintf(bin, sizeof bin, "%s/client/strapontin-bench",
		 h_env("ST_BUILD_DIR"));
	snprintf(server, sizeof server, "127.0.0.1:%d", dd->port);
	snprintf(ca, sizeof ca, "%s/ca.pem", h_certs_dir());
	argv[n++] = bin;
	argv[n++] = "--server";
	argv[n++] = server;
	argv[n++] = "--ca";
	argv[n++] = ca;
	argv[n++] = "--admin-email";
	argv[n++] = H_ADMIN_EMAIL;
	argv[n++] = "--db";
	argv[n++] = dd->conninfo;
	for (i = 0; args[i] != NULL && n < MAX_ARGS - 1; i++)
		argv[n++] = args[i];
	argv[n] = NULL;

	memset(r, 0, sizeof *r);
	if (pipe(pfd) != 0)
		h_fail("pipe: %s", strerror(errno));
	if ((pid = fork()) < 0)
		h_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		dup2(null, STDIN_FILENO);
		dup2(pfd[1], STDOUT_FILENO);
		dup2(pfd[1], STDERR_FILENO);
		close(pfd[0]);
		close(pfd[1]);
		setenv("STRAPONTIN_PASSWORD", H_ADMIN_PASSWORD, 1);
		execv(bin, (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p = {.fd = pfd[0], .events = POLLIN};
		long elapsed;
		ssize_t got;

		clock_gettime(CLOCK_MONOTONIC, &t1);
		elapsed = (t1.tv_sec - t0.tv_sec) * 1000 +
			  (t1.tv_nsec - t0.tv_nsec) / 1000000;
		if (elapsed > RUN_TIMEOUT_MS) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			close(pfd[0]);
			h_fail("strapontin-bench still runs after %d ms:\n%s",
			       RUN_TIMEOUT_MS, r->out);
		}
		if (poll(&p, 1, 1000) <= 0)
			continue;
		got = read(pfd[0], r->out + len, sizeof r->out - 1 - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		len += (size_t)got;
		if (len == sizeof r->out - 1) {
			/* Keep reading so the child never blocks; the
			 * report's end is what matters, the start stays. */
			char sink[4096];

			while (read(pfd[0], sink, sizeof sink) > 0)
				;
			break;
		}
	}
	r->out[len] = '\0';
	close(pfd[0]);
	if (waitpid(pid, &st, 0) != pid)
		h_fail("waitpid: %s", strerror(errno));
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	/* Shown by ctest --output-on-failure, and handy in the log. */
	fprintf(stderr, "--- strapontin-bench %s (exit %d)\n%s", args[1],
		r->status, r->out);
}

static void
assert_contains(const struct run *r, const char *needle)
{
	if (strstr(r->out, needle) == NULL)
		h_fail("strapontin-bench output lacks \"%s\":\n%s", needle,
		       r->out);
}

/* The number after `key` in the output, or -1. */
static long long
number_after(const struct run *r, const char *key)
{
	const char *p = strstr(r->out, key);

	return p != NULL ? strtoll(p + strlen(key), NULL, 10) : -1;
}

static int
setup(void **state)
{
	char ini[1024];

	(void)state;
	snprintf(ini, sizeof ini, "[database]\npool_size = 4\n"
	    "[policy]\nmax_upcoming_per_beneficiary = 1000\n"
	    "max_per_month = 1000\n[privacy]\nidentity_secret_file = %s\n",
	    w_secret_file("bench", "the-bench-secret-of-identity-keys-0123456789"));
	d = h_daemon_start("bench", ini);
	d_caps = h_daemon_start("bench_caps", NULL);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	if (h_daemon_stop(d_caps) != 0 || h_daemon_stop(d) != 0)
		return -1;
	return 0;
}

static void
test_ping(void **state)
{
	static const char *const args[] = {"-w", "ping", "-n", "300", "-c",
	    "4", "-j", "2", "-P", "3", NULL};
	struct run r;

	(void)state;
	run_bench(&r, d, args);
	assert_int_equal(r.status, 0);
	assert_contains(&r, "requests: 300 in ");
	assert_contains(&r, "(ok 300, refused 0, errors 0)");
	assert_contains(&r, "throughput: ");
	assert_contains(&r, "latency (ms): avg ");
	assert_contains(&r, " p99.9 ");
}

static void
test_offer_list(void **state)
{
	static const char *const args[] = {"-w", "offer-list", "-n", "200",
	    "-c", "3", "-P", "2", "--offers", "25", "--limit", "10", NULL};
	struct run r;

	(void)state;
	run_bench(&r, d, args);
	assert_int_equal(r.status, 0);
	assert_contains(&r, "fixture: offers=25 ");
	assert_contains(&r, "(ok 200, refused 0, errors 0)");
}

/* 300 requests on 10 x 40 pairs: every one books, each pair once. */
static void
test_book_uniform(void **state)
{
	static const char *const args[] = {"-w", "book-uniform", "-n", "300",
	    "-c", "6", "-j", "2", "-P", "2", "--offers", "10",
	    "--beneficiaries", "40", NULL};
	struct run r;

	(void)state;
	run_bench(&r, d, args);
	assert_int_equal(r.status, 0);
	assert_contains(&r, "(ok 300, refused 0, errors 0)");
	assert_contains(&r, "seats acknowledged: 300\n");
	assert_contains(&r, "verdict: OK: seats taken 300 = seats "
			    "acknowledged 300 (300 bookings); invariant 1 (docs/booking-rules.md) holds");
}

/* 300 clients' requests for one 50-seat offer: 50 seats exactly. */
static void
test_book_hot(void **state)
{
	static const char *const args[] = {"-w", "book-hot", "-n", "300", "-c",
	    "10", "-j", "2", "-P", "2", "--seats", "50", "--beneficiaries",
	    "300", NULL};
	struct run r;

	(void)state;
	run_bench(&r, d, args);
	assert_int_equal(r.status, 0);
	assert_contains(&r, "(ok 50, refused 250, errors 0)");
	assert_contains(&r, "sold_out 250, duplicate 0");
	assert_contains(&r, "verdict: OK: seats taken 50 = seats acknowledged "
			    "50 (50 bookings)");
}

/* With the default caps (2 upcoming bookings a person) most bookings are
 * refused: counted as refusals, and the seats still add up. */
static void
test_book_with_caps(void **state)
{
	static const char *const args[] = {"-w", "book-uniform", "-n", "200",
	    "-c", "4", "--offers", "10", "--beneficiaries", "20", NULL};
	struct run r;
	long long ok, limit;

	(void)state;
	run_bench(&r, d_caps, args);
	assert_int_equal(r.status, 0);
	ok = number_after(&r, "(ok ");
	limit = number_after(&r, "limit_reached ");
	assert_true(ok > 0 && ok <= 40);
	assert_int_equal(ok + limit, 200);
	assert_contains(&r, "note: limit_reached refusals");
	assert_contains(&r, "verdict: OK: ");
}

/* A booking workload with more requests than pairs: the repeats are
 * refused as duplicates, and the check still holds. */
static void
test_book_wraps(void **state)
{
	static const char *const args[] = {"-w", "book-uniform", "-n", "150",
	    "-c", "4", "--offers", "5", "--beneficiaries", "20", NULL};
	struct run r;

	(void)state;
	run_bench(&r, d, args);
	assert_int_equal(r.status, 0);
	assert_contains(&r, "(ok 100, refused 50, errors 0)");
	assert_contains(&r, "duplicate 50");
	assert_contains(&r, "verdict: OK: seats taken 100 = seats "
			    "acknowledged 100");
}

/* --bulk-beneficiaries: the beneficiaries come from one SQL statement, with
 * consecutive ids, and book like any: 40 requests for one offer by 40
 * distinct people, none refused. */
static void
test_bulk_beneficiaries(void **state)
{
	static const char *const args[] = {"-w", "book-hot", "-n", "40", "-c",
	    "4", "--seats", "40", "--beneficiaries", "40",
	    "--bulk-beneficiaries", NULL};
	struct run r;

	(void)state;
	run_bench(&r, d, args);
	assert_int_equal(r.status, 0);
	assert_contains(&r, "fixture: beneficiaries=40 ");
	assert_contains(&r, " contiguous=yes\n");
	assert_contains(&r, "(ok 40, refused 0, errors 0)");
	assert_contains(&r, "verdict: OK: seats taken 40 = seats acknowledged "
			    "40 (40 bookings)");
}

/* -T and -n together: the first reached ends the run. A count reached long
 * before the time stops it, with no duplicate however long -T is. */
static void
test_time_and_count(void **state)
{
	static const char *const args[] = {"-w", "book-hot", "-n", "30", "-T",
	    "100", "-c", "3", "--seats", "30", "--beneficiaries", "30", NULL};
	static const char *const time_first[] = {"-w", "ping", "-n",
	    "1000000000", "-T", "1", "-c", "2", NULL};
	struct run r;
	long long n;

	(void)state;
	run_bench(&r, d, args);
	assert_int_equal(r.status, 0);
	assert_contains(&r, ", 100 s or 30 requests\n");
	assert_contains(&r, "requests: 30 in ");
	assert_contains(&r, "(ok 30, refused 0, errors 0)");
	assert_true(number_after(&r, "requests: 30 in ") < 100);
	/* The time limit still ends a run that has not sent its count. */
	run_bench(&r, d, time_first);
	assert_int_equal(r.status, 0);
	n = number_after(&r, "requests: ");
	assert_true(n > 0 && n < 1000000000);
}

/* The check reads the database it is given: pointed at another one, it
 * finds none of the seats it was told were booked, says so and fails. */
static void
test_verdict_fails(void **state)
{
	const char *args[] = {"-w", "book-hot", "-n", "60", "-c", "2",
	    "--seats", "20", "--beneficiaries", "60", "--db", NULL, NULL};
	struct run r;

	(void)state;
	args[11] = d_caps->conninfo;
	run_bench(&r, d, args);
	assert_int_equal(r.status, 1);
	assert_contains(&r, "(ok 20, refused 40, errors 0)");
	assert_contains(&r, "verdict: FAIL: seats taken ");
	assert_contains(&r, " but 20 acknowledged");
}

/* --identity: every beneficiary gets a key through
 * beneficiary.set_identity, one in two a twin in a second structure; every
 * booking then takes the person's lock and reads the caps over the
 * person's records, and all still book (caps raised). The keys are in the
 * database: 40 records of the run, 20 keys held twice. */
static void
test_identity(void **state)
{
	static const char *const args[] = {"-w", "book-uniform", "-n", "200",
	    "-c", "4", "-j", "2", "-P", "2", "--offers", "10",
	    "--beneficiaries", "40", "--identity", "50", "--tag", "bench-id1",
	    NULL};
	static const char *const bulk[] = {"-w", "book-hot", "-n", "40", "-c",
	    "4", "--seats", "40", "--beneficiaries", "40",
	    "--bulk-beneficiaries", "--identity", "25", NULL};
	struct run r;
	PGconn *db;

	(void)state;
	run_bench(&r, d, args);
	assert_int_equal(r.status, 0);
	assert_contains(&r, "fixture: identity keys=40 twins=20 structure2_id=");
	assert_contains(&r, "(ok 200, refused 0, errors 0)");
	assert_contains(&r, "verdict: OK: seats taken 200 = seats "
			    "acknowledged 200 (200 bookings); invariant 1");
	db = h_db_connect(d->conninfo);
	assert_string_equal(h_db_exec(db,
	    "SELECT count(*) || ' ' || count(DISTINCT identity_key)"
	    "  FROM beneficiaries b JOIN structures s ON s.id = b.structure_id"
	    " WHERE s.name LIKE 'Bench structure bench-id1%'"
	    "   AND b.identity_key IS NOT NULL"), "60 40");
	PQfinish(db);
	/* The twins of --bulk-beneficiaries come from SQL too. */
	run_bench(&r, d, bulk);
	assert_int_equal(r.status, 0);
	assert_contains(&r, "fixture: identity keys=40 twins=10 ");
	assert_contains(&r, "(ok 40, refused 0, errors 0)");
	assert_contains(&r, "verdict: OK: ");
	/* Without the daemon's secret no key is made: the run cannot
	 * start. */
	run_bench(&r, d_caps, bulk);
	assert_int_equal(r.status, 3);
	assert_contains(&r, "--identity: not made");
}

/* book-group: 6 groups of 4 people and 2 staff seats over 5 offers, 30
 * (offer, group) pairs: 30 groups book 180 seats (120 bookings, 60 staff
 * seats), the 6 requests past the pairs are refused as duplicates, and
 * the check counts the staff seats. With --identity as well, each person
 * of a group takes their lock. */
static void
test_book_group(void **state)
{
	static const char *const args[] = {"-w", "book-group", "-n", "36",
	    "-c", "3", "-P", "2", "--offers", "5", "--beneficiaries", "24",
	    "--group-size", "4", "--staff-seats", "2", NULL};
	static const char *const ident[] = {"-w", "book-group", "-n", "20",
	    "-c", "2", "--offers", "5", "--beneficiaries", "16",
	    "--identity", "50", NULL};
	struct run r;

	(void)state;
	run_bench(&r, d, args);
	assert_int_equal(r.status, 0);
	assert_contains(&r, "fixture: groups=6 size=4 staff_seats=2\n");
	assert_contains(&r, "seats=36 ");
	assert_contains(&r, "fixture: pairs=30 ");
	assert_contains(&r, "(ok 30, refused 6, errors 0)");
	assert_contains(&r, "duplicate 6");
	assert_contains(&r, "groups: 30 booked of 4 people and 2 staff seats "
			    "(120 people, 60 staff seats)\n");
	assert_contains(&r, " seats/s (");
	assert_contains(&r, "seats acknowledged: 180\n");
	assert_contains(&r, "verdict: OK: seats taken 180 = seats "
			    "acknowledged 180 (120 bookings, 30 groups holding "
			    "60 staff seats); invariant 1");
	run_bench(&r, d, ident);
	assert_int_equal(r.status, 0);
	assert_contains(&r, "fixture: identity keys=16 twins=8 ");
	assert_contains(&r, "(ok 20, refused 0, errors 0)");
	assert_contains(&r, "verdict: OK: seats taken 100 = seats "
			    "acknowledged 100 (80 bookings, 20 groups holding "
			    "20 staff seats)");
}

static void
test_usage(void **state)
{
	static const char *const no_admin[] = {"-w", "book-hot", "-n", "1",
	    "--admin-email", "", NULL};
	static const char *const bulk_no_db[] = {"-w", "book-hot", "-n", "1",
	    "--bulk-beneficiaries", "--db",
	    "host=127.0.0.1 port=1 connect_timeout=5", NULL};
	static const char *const threads[] = {"-w", "ping", "-c", "2", "-j",
	    "3", NULL};
	static const char *const id_list[] = {"-w", "offer-list",
	    "--identity", "10", NULL};
	static const char *const small[] = {"-w", "book-group",
	    "--beneficiaries", "3", "--group-size", "4", NULL};
	static const char *const staff[] = {"-w", "book-group",
	    "--staff-seats", "21", NULL};
	struct run r;

	(void)state;
	run_bench(&r, d, bulk_no_db);
	assert_int_equal(r.status, 3);
	assert_contains(&r, "--bulk-beneficiaries: database: ");
	run_bench(&r, d, threads);
	assert_int_equal(r.status, 2);
	run_bench(&r, d, id_list);
	assert_int_equal(r.status, 2);
	run_bench(&r, d, small);
	assert_int_equal(r.status, 2);
	run_bench(&r, d, staff);
	assert_int_equal(r.status, 2);
	/* An empty e-mail reaches the server, which refuses the login. */
	run_bench(&r, d, no_admin);
	assert_int_equal(r.status, 3);
	assert_contains(&r, "login as ");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ping),
	    cmocka_unit_test(test_offer_list),
	    cmocka_unit_test(test_book_uniform),
	    cmocka_unit_test(test_book_hot),
	    cmocka_unit_test(test_book_with_caps),
	    cmocka_unit_test(test_book_wraps),
	    cmocka_unit_test(test_bulk_beneficiaries),
	    cmocka_unit_test(test_time_and_count),
	    cmocka_unit_test(test_verdict_fails),
	    cmocka_unit_test(test_identity),
	    cmocka_unit_test(test_book_group),
	    cmocka_unit_test(test_usage),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
