/*
 * strapontin-bench: load generator for strapontind.
 *
 *	strapontin-bench [options] -w WORKLOAD
 *
 * Workloads: ping (system.ping, no login), offer-list (offer.list),
 * book-uniform (booking.create over many offers and beneficiaries, each
 * pair once), book-hot (booking.create on one offer by every client) and
 * book-group (booking.create_group over offers and groups, each pair once).
 * --identity gives the beneficiaries identity keys, some shared with a
 * record of a second structure, so that bookings take the person's lock
 * and count the caps over the person's records.
 * All but ping build their own fixture first through the API, which needs
 * an administrator's login. Booking workloads check the database after
 * the run when given --db.
 *
 * Exit: 0 done (and the invariants hold, if checked), 1 the invariants do
 * not hold, 2 usage, 3 the run could not start or had errors (lost
 * connections, timeouts, error answers other than booking refusals).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "bench.h"

#ifndef STRAPONTIN_VERSION
#define STRAPONTIN_VERSION "unknown"
#endif

#define DEFAULT_SERVER "127.0.0.1:7443"
#define DEFAULT_REQUESTS 10000

enum {
	EXIT_OK = 0,
	EXIT_VERDICT = 1,
	EXIT_USAGE = 2,
	EXIT_RUN = 3,
};

static const char *const workload_names[] = {
    [BW_PING] = "ping",
    [BW_OFFER_LIST] = "offer-list",
    [BW_BOOK_UNIFORM] = "book-uniform",
    [BW_BOOK_HOT] = "book-hot",
    [BW_BOOK_GROUP] = "book-group",
};

const char *
bench_workload_name(enum bench_workload w)
{
	return workload_names[w];
}

bool
bench_is_booking(enum bench_workload w)
{
	return w == BW_BOOK_UNIFORM || w == BW_BOOK_HOT || w == BW_BOOK_GROUP;
}

void
bench_warnx(const char *fmt, ...)
{
	va_list ap;

	fputs("strapontin-bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: strapontin-bench [options] -w WORKLOAD\n"
	    "\n"
	    "workloads:\n"
	    "  ping          system.ping, no login\n"
	    "  offer-list    offer.list over the fixture's offers\n"
	    "  book-uniform  booking.create over --offers x --beneficiaries "
	    "pairs, each once\n"
	    "  book-hot      booking.create on one offer of --seats seats by "
	    "every client\n"
	    "  book-group    booking.create_group over --offers x groups of "
	    "--group-size,\n"
	    "                each pair once\n"
	    "\n"
	    "load:\n"
	    "  -c, --clients N     connections (default 8)\n"
	    "  -j, --threads N     threads sharing them (default 1)\n"
	    "  -T, --time SECONDS  run that long, and/or\n"
	    "  -n, --requests N    send that many requests (default %d when\n"
	    "                      no -T; with -T, the first reached ends "
	    "the run)\n"
	    "  -P, --pipeline N    requests in flight per connection "
	    "(default 1)\n"
	    "  -w, --workload NAME see above (default ping)\n"
	    "\n"
	    "server:\n"
	    "  --server HOST:PORT  (default $STRAPONTIN_SERVER, else %s)\n"
	    "  --ca FILE           CA that signed the server's certificate\n"
	    "                      (default $STRAPONTIN_CA, else the system "
	    "store)\n"
	    "  --timeout SECONDS   per request (default 30)\n"
	    "\n"
	    "fixture (every workload but ping):\n"
	    "  --admin-email EMAIL an administrator; the password comes from\n"
	    "                      $STRAPONTIN_PASSWORD, else standard input\n"
	    "  --offers N          offers (default 100; book-hot: 1)\n"
	    "  --beneficiaries N   beneficiaries (default 1000)\n"
	    "  --bulk-beneficiaries  insert them with one SQL statement "
	    "through --db\n"
	    "                      instead of beneficiary.create calls "
	    "(faster)\n"
	    "  --seats N           seats per offer (default: --beneficiaries "
	    "for\n"
	    "                      book-uniform, so no offer sells out; 100 "
	    "otherwise)\n"
	    "  --identity PERCENT  give every beneficiary an identity key "
	    "(beneficiary.\n"
	    "                      set_identity), PERCENT of them shared with "
	    "a record of\n"
	    "                      a second structure; the daemon needs\n"
	    "                      privacy.identity_secret_file\n"
	    "  --group-size N      book-group: people per group (default 4, "
	    "at most 50)\n"
	    "  --staff-seats N     book-group: staff seats per group (default "
	    "1, at most 20)\n"
	    "  --limit N           offer.list's page size (default 20)\n"
	    "  --tag WORD          names the fixture (default from time and "
	    "pid)\n"
	    "  --setup-only        build the fixture, print it, exit\n"
	    "\n"
	    "  --db CONNINFO       after a booking run, check the database "
	    "(libpq)\n"
	    "  -q, --quiet         only the report\n"
	    "  -h, --help, --version\n"
	    "\n"
	    "The daemon's policy caps count every booking of a beneficiary: "
	    "for booking\nworkloads configure it with high "
	    "policy.max_upcoming_per_beneficiary and\npolicy.max_per_month "
	    "(e.g. 1000), or refusals (limit_reached) dominate.\n"
	    "Exit: 0 ok, 1 the database check failed, 2 usage, 3 the run "
	    "failed or had errors.\n",
	    DEFAULT_REQUESTS, DEFAULT_SERVER);
}

/* "host:port", "[v6]:port", "host" or "[v6]". */
static int
parse_server(struct bench_config *cfg, const char *s)
{
	const char *colon, *end;
	size_t hl;

	cfg->server = s;
	snprintf(cfg->port, sizeof cfg->port, "7443");
	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL)
			return -1;
		hl = (size_t)(end - s - 1);
		if (end[1] == ':')
			colon = end + 1;
		else if (end[1] == '\0')
			colon = NULL;
		else
			return -1;
		s++;
	} else {
		colon = strrchr(s, ':');
		if (colon != NULL && strchr(s, ':') != colon) {
			unsigned char a6[16];

			if (inet_pton(AF_INET6, s, a6) != 1)
				return -1;
			colon = NULL;
		}
		hl = colon ? (size_t)(colon - s) : strlen(s);
	}
	if (hl == 0 || hl >= sizeof cfg->host)
		return -1;
	memcpy(cfg->host, s, hl);
	cfg->host[hl] = '\0';
	if (colon != NULL) {
		if (colon[1] == '\0' || strlen(colon + 1) >= sizeof cfg->port ||
		    strspn(colon + 1, "0123456789") != strlen(colon + 1))
			return -1;
		snprintf(cfg->port, sizeof cfg->port, "%s", colon + 1);
	}
	return 0;
}

static int
parse_int(const char *opt, const char *s, long long lo, long long hi,
	  long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
		bench_warnx("%s: expected a whole number from %lld to %lld",
			    opt, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

/* One line from standard input without its newline; without echo when
 * it is a terminal. */
static int
read_password(char *buf, size_t len)
{
	struct termios saved, t;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
	size_t n;

	if (tty) {
		t = saved;
		t.c_lflag &= ~(tcflag_t)ECHO;
		t.c_lflag |= ECHONL;
		fputs("Password: ", stderr);
		fflush(stderr);
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &t);
	}
	if (fgets(buf, (int)len, stdin) == NULL)
		buf[0] = '\0';
	if (tty)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
	n = strcspn(buf, "\r\n");
	buf[n] = '\0';
	return n > 0 ? 0 : -1;
}

static int
get_password(struct bench_config *cfg)
{
	const char *env = getenv("STRAPONTIN_PASSWORD");

	if (env != NULL && env[0] != '\0') {
		if (strlen(env) >= sizeof cfg->password) {
			bench_warnx("STRAPONTIN_PASSWORD is too long");
			return -1;
		}
		snprintf(cfg->password, sizeof cfg->password, "%s", env);
		return 0;
	}
	if (read_password(cfg->password, sizeof cfg->password) != 0) {
		bench_warnx("no password: set STRAPONTIN_PASSWORD or give it "
			    "on standard input");
		return -1;
	}
	return 0;
}

static bool
valid_tag(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n < 40 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

enum {
	OPT_SERVER = 256,
	OPT_CA,
	OPT_TIMEOUT,
	OPT_ADMIN,
	OPT_OFFERS,
	OPT_BENS,
	OPT_SEATS,
	OPT_LIMIT,
	OPT_TAG,
	OPT_SETUP,
	OPT_DB,
	OPT_BULK,
	OPT_IDENTITY,
	OPT_GROUP_SIZE,
	OPT_STAFF,
	OPT_VERSION,
};

static const struct option long_opts[] = {
    {"clients", required_argument, NULL, 'c'},
    {"threads", required_argument, NULL, 'j'},
    {"time", required_argument, NULL, 'T'},
    {"requests", required_argument, NULL, 'n'},
    {"pipeline", required_argument, NULL, 'P'},
    {"workload", required_argument, NULL, 'w'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"server", required_argument, NULL, OPT_SERVER},
    {"ca", required_argument, NULL, OPT_CA},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"admin-email", required_argument, NULL, OPT_ADMIN},
    {"offers", required_argument, NULL, OPT_OFFERS},
    {"beneficiaries", required_argument, NULL, OPT_BENS},
    {"seats", required_argument, NULL, OPT_SEATS},
    {"limit", required_argument, NULL, OPT_LIMIT},
    {"tag", required_argument, NULL, OPT_TAG},
    {"setup-only", no_argument, NULL, OPT_SETUP},
    {"db", required_argument, NULL, OPT_DB},
    {"bulk-beneficiaries", no_argument, NULL, OPT_BULK},
    {"identity", required_argument, NULL, OPT_IDENTITY},
    {"group-size", required_argument, NULL, OPT_GROUP_SIZE},
    {"staff-seats", required_argument, NULL, OPT_STAFF},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* 0, EXIT_USAGE, or -1 for --help/--version (exit 0). */
static int
parse_args(struct bench_config *cfg, int argc, char **argv)
{
	const char *server = getenv("STRAPONTIN_SERVER");
	char *end;
	long long v;
	double secs;
	int ch, i;

	memset(cfg, 0, sizeof *cfg);
	cfg->clients = 8;
	cfg->threads = 1;
	cfg->pipeline = 1;
	cfg->offers = 100;
	cfg->beneficiaries = 1000;
	cfg->list_limit = 20;
	cfg->identity_pct = -1;
	cfg->group_size = 4;
	cfg->staff_seats = 1;
	cfg->opt.timeout_ms = 30000;
	cfg->opt.ca_file = getenv("STRAPONTIN_CA");
	if (cfg->opt.ca_file != NULL && cfg->opt.ca_file[0] == '\0')
		cfg->opt.ca_file = NULL;
	if (server == NULL || server[0] == '\0')
		server = DEFAULT_SERVER;
	snprintf(cfg->tag, sizeof cfg->tag, "b%lld-%d", (long long)time(NULL),
		 (int)getpid());

	while ((ch = getopt_long(argc, argv, "c:j:T:n:P:w:qh", long_opts,
				 NULL)) != -1) {
		switch (ch) {
		case 'c':
			if (parse_int("-c", optarg, 1, 10000, &v) != 0)
				return EXIT_USAGE;
			cfg->clients = (int)v;
			break;
		case 'j':
			if (parse_int("-j", optarg, 1, 1000, &v) != 0)
				return EXIT_USAGE;
			cfg->threads = (int)v;
			break;
		case 'T':
			errno = 0;
			secs = strtod(optarg, &end);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    !(secs > 0 && secs <= 86400)) {
				bench_warnx("-T: expected seconds, more than 0 "
					    "and at most 86400");
				return EXIT_USAGE;
			}
			cfg->seconds = secs;
			break;
		case 'n':
			if (parse_int("-n", optarg, 1, 1000000000, &v) != 0)
				return EXIT_USAGE;
			cfg->requests = v;
			break;
		case 'P':
			if (parse_int("-P", optarg, 1, 1000, &v) != 0)
				return EXIT_USAGE;
			cfg->pipeline = (int)v;
			break;
		case 'w':
			for (i = 0; i < (int)(sizeof workload_names /
					      sizeof workload_names[0]);
			     i++)
				if (strcmp(optarg, workload_names[i]) == 0)
					break;
			if (i == (int)(sizeof workload_names /
				       sizeof workload_names[0])) {
				bench_warnx("unknown workload %s (ping, "
					    "offer-list, book-uniform, "
					    "book-hot, book-group)",
					    optarg);
				return EXIT_USAGE;
			}
			cfg->workload = (enum bench_workload)i;
			break;
		case 'q':
			cfg->quiet = true;
			break;
		case 'h':
			usage(stdout);
			return -1;
		case OPT_SERVER:
			server = optarg;
			break;
		case OPT_CA:
			cfg->opt.ca_file = optarg;
			break;
		case OPT_TIMEOUT:
			if (parse_int("--timeout", optarg, 1, 3600, &v) != 0)
				return EXIT_USAGE;
			cfg->opt.timeout_ms = (int)v * 1000;
			break;
		case OPT_ADMIN:
			cfg->admin_email = optarg;
			break;
		case OPT_OFFERS:
			if (parse_int("--offers", optarg, 1, BENCH_MAX_FIXTURE,
				      &v) != 0)
				return EXIT_USAGE;
			cfg->offers = (int)v;
			break;
		case OPT_BENS:
			if (parse_int("--beneficiaries", optarg, 1,
				      BENCH_MAX_FIXTURE, &v) != 0)
				return EXIT_USAGE;
			cfg->beneficiaries = (int)v;
			break;
		case OPT_SEATS:
			if (parse_int("--seats", optarg, 1, 100000, &v) != 0)
				return EXIT_USAGE;
			cfg->seats = (int)v;
			break;
		case OPT_LIMIT:
			if (parse_int("--limit", optarg, 1, 500, &v) != 0)
				return EXIT_USAGE;
			cfg->list_limit = (int)v;
			break;
		case OPT_TAG:
			if (!valid_tag(optarg)) {
				bench_warnx("--tag: lowercase letters, digits "
					    "and -, under 40");
				return EXIT_USAGE;
			}
			snprintf(cfg->tag, sizeof cfg->tag, "%s", optarg);
			break;
		case OPT_SETUP:
			cfg->setup_only = true;
			break;
		case OPT_DB:
			cfg->db = optarg;
			break;
		case OPT_BULK:
			cfg->bulk_beneficiaries = true;
			break;
		case OPT_IDENTITY:
			if (parse_int("--identity", optarg, 0, 100, &v) != 0)
				return EXIT_USAGE;
			cfg->identity_pct = (int)v;
			break;
		case OPT_GROUP_SIZE:
			/* booking.create_group takes 1 to 50 people. */
			if (parse_int("--group-size", optarg, 1, 50, &v) != 0)
				return EXIT_USAGE;
			cfg->group_size = (int)v;
			break;
		case OPT_STAFF:
			if (parse_int("--staff-seats", optarg, 0, 20, &v) != 0)
				return EXIT_USAGE;
			cfg->staff_seats = (int)v;
			break;
		case OPT_VERSION:
			printf("strapontin-bench %s\n", STRAPONTIN_VERSION);
			return -1;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		bench_warnx("unexpected argument %s", argv[optind]);
		return EXIT_USAGE;
	}
	if (cfg->seconds == 0 && cfg->requests == 0)
		cfg->requests = DEFAULT_REQUESTS;
	if (cfg->threads > cfg->clients) {
		bench_warnx("more threads (-j %d) than connections (-c %d)",
			    cfg->threads, cfg->clients);
		return EXIT_USAGE;
	}
	if (cfg->workload == BW_PING && cfg->setup_only) {
		bench_warnx("ping needs no fixture");
		return EXIT_USAGE;
	}
	if ((cfg->workload == BW_BOOK_UNIFORM ||
	     cfg->workload == BW_BOOK_GROUP) &&
	    (long long)cfg->offers * cfg->beneficiaries > BENCH_MAX_PAIRS) {
		bench_warnx("--offers x --beneficiaries is at most %lld",
			    (long long)BENCH_MAX_PAIRS);
		return EXIT_USAGE;
	}
	if (cfg->workload == BW_BOOK_GROUP &&
	    cfg->beneficiaries < cfg->group_size) {
		bench_warnx("book-group: fewer --beneficiaries than "
			    "--group-size");
		return EXIT_USAGE;
	}
	/* By default every group can book every offer: an offer has at
	 * most 100000 seats. */
	if (cfg->workload == BW_BOOK_GROUP && cfg->seats == 0 &&
	    (long long)(cfg->beneficiaries / cfg->group_size) *
		    (cfg->group_size + cfg->staff_seats) >
		100000) {
		bench_warnx("book-group: the groups need more than 100000 "
			    "seats an offer: give --seats");
		return EXIT_USAGE;
	}
	if (cfg->identity_pct >= 0 && !bench_is_booking(cfg->workload)) {
		bench_warnx("--identity goes with a booking workload");
		return EXIT_USAGE;
	}
	if (cfg->bulk_beneficiaries && cfg->db == NULL) {
		bench_warnx("--bulk-beneficiaries inserts through --db: give "
			    "--db");
		return EXIT_USAGE;
	}
	if (cfg->workload != BW_PING && cfg->admin_email == NULL) {
		bench_warnx("%s builds a fixture: give --admin-email",
			    workload_names[cfg->workload]);
		return EXIT_USAGE;
	}
	if (parse_server(cfg, server) != 0) {
		bench_warnx("bad server %s (HOST:PORT, [IPV6]:PORT)", server);
		return EXIT_USAGE;
	}
	cfg->opt.host = cfg->host;
	cfg->opt.port = cfg->port;
	return 0;
}

/* Nearest rank: the smallest latency with at least p% at or below it. */
static double
percentile_ms(const struct bench_stats *st, double p)
{
	size_t rank;

	if (st->nlat == 0)
		return 0;
	rank = (size_t)ceil(p / 100.0 * (double)st->nlat);
	if (rank < 1)
		rank = 1;
	if (rank > st->nlat)
		rank = st->nlat;
	return st->lat_us[rank - 1] / 1000.0;
}

/* A group is one request but several bookings: its rate per seat is the
 * figure to set beside single bookings'. */
static void
report_groups(const struct bench_config *cfg, const struct bench_result *res)
{
	const struct bench_stats *st = &res->st;
	int64_t people = st->ok * cfg->group_size;

	printf("groups: %lld booked of %d people and %d staff seats "
	       "(%lld people, %lld staff seats)\n",
	       (long long)st->ok, cfg->group_size, cfg->staff_seats,
	       (long long)people, (long long)st->staff_acked);
	printf("seats: %.1f seats/s (%.1f people/s), %.3f ms per seat\n",
	       res->elapsed_s > 0 ? (double)st->seats_acked / res->elapsed_s
				  : 0.0,
	       res->elapsed_s > 0 ? (double)people / res->elapsed_s : 0.0,
	       st->seats_acked > 0
		   ? res->elapsed_s * 1e3 / (double)st->seats_acked
		   : 0.0);
}

static void
report(const struct bench_config *cfg, const struct bench_result *res)
{
	const struct bench_stats *st = &res->st;
	int64_t answered = st->ok + st->refused;
	double sum = 0;
	size_t i;

	for (i = 0; i < st->nlat; i++)
		sum += st->lat_us[i];
	printf("requests: %lld in %.3f s (ok %lld, refused %lld, errors "
	       "%lld)\n",
	       (long long)(answered + st->errors), res->elapsed_s,
	       (long long)st->ok, (long long)st->refused,
	       (long long)st->errors);
	if (st->refused > 0)
		printf("refused: sold_out %lld, duplicate %lld, limit_reached "
		       "%lld, other %lld\n",
		       (long long)st->refused_sold_out,
		       (long long)st->refused_duplicate,
		       (long long)st->refused_limit,
		       (long long)st->refused_other);
	printf("throughput: %.1f requests/s\n",
	       res->elapsed_s > 0 ? (double)answered / res->elapsed_s : 0.0);
	printf("latency (ms): avg %.3f  p50 %.3f  p90 %.3f  p99 %.3f  "
	       "p99.9 %.3f  max %.3f\n",
	       st->nlat ? sum / (double)st->nlat / 1000.0 : 0.0,
	       percentile_ms(st, 50), percentile_ms(st, 90),
	       percentile_ms(st, 99), percentile_ms(st, 99.9),
	       percentile_ms(st, 100));
	printf("client cpu: user %.2f s, sys %.2f s (%.1f us per request)\n",
	       res->cpu_user_s, res->cpu_sys_s,
	       answered > 0
		   ? (res->cpu_user_s + res->cpu_sys_s) * 1e6 / (double)answered
		   : 0.0);
	if (cfg->workload == BW_BOOK_GROUP)
		report_groups(cfg, res);
	if (bench_is_booking(cfg->workload))
		printf("seats acknowledged: %lld%s\n",
		       (long long)st->seats_acked,
		       st->seats_unknown ? " (and some of unknown fate)" : "");
	if (st->errors > 0)
		printf("first error: %s\n", st->first_error);
	if (st->refused_limit > 0)
		printf(
		    "note: limit_reached refusals: configure the daemon with "
		    "high policy.max_upcoming_per_beneficiary and "
		    "policy.max_per_month\n");
	if ((cfg->workload == BW_BOOK_UNIFORM ||
	     cfg->workload == BW_BOOK_GROUP) &&
	    st->refused_duplicate > 0)
		printf("note: more requests than (offer, beneficiary) pairs: "
		       "raise --offers or --beneficiaries\n");
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	struct bench_config cfg;
	struct bench_fixture fx;
	struct bench_result res;
	uint64_t t0;
	int r, ret = EXIT_OK;

	memset(&fx, 0, sizeof fx);
	memset(&res, 0, sizeof res);
	if ((r = parse_args(&cfg, argc, argv)) != 0)
		return r < 0 ? EXIT_OK : r;
	/* The library writes with MSG_NOSIGNAL; this is for stdout into a
	 * closed pipe. */
	signal(SIGPIPE, SIG_IGN);
	if (cfg.workload != BW_PING && get_password(&cfg) != 0)
		return EXIT_USAGE;

	if (!cfg.quiet || cfg.setup_only)
		printf("strapontin-bench %s: %s, %s, %d connections, %d "
		       "threads, pipeline %d, ",
		       STRAPONTIN_VERSION, workload_names[cfg.workload],
		       cfg.server, cfg.clients, cfg.threads, cfg.pipeline);
	if (!cfg.quiet || cfg.setup_only) {
		if (cfg.seconds > 0 && cfg.requests > 0)
			printf("%.3g s or %lld requests\n", cfg.seconds,
			       (long long)cfg.requests);
		else if (cfg.seconds > 0)
			printf("%.3g s\n", cfg.seconds);
		else
			printf("%lld requests\n", (long long)cfg.requests);
		fflush(stdout);
	}
	t0 = bench_now_us();
	if (bench_fixture_build(&cfg, &fx) != 0) {
		explicit_bzero(cfg.password, sizeof cfg.password);
		return EXIT_RUN;
	}
	explicit_bzero(cfg.password, sizeof cfg.password);
	if (cfg.workload != BW_PING && (!cfg.quiet || cfg.setup_only)) {
		printf("fixture: tag=%s built in %.1f s\n", cfg.tag,
		       (double)(bench_now_us() - t0) / 1e6);
		bench_fixture_print(&fx);
		/* bench/compare-pgbench reads the CPU of the server from here:
		 * what follows is the run alone. */
		fflush(stdout);
	}
	if (cfg.setup_only) {
		/* The session stays: the compare script uses it. */
		bench_fixture_free(&fx);
		return EXIT_OK;
	}

	if (bench_run(&cfg, &fx, &res) != 0) {
		ret = EXIT_RUN;
		goto out;
	}
	report(&cfg, &res);
	/* ...and to here, before the check of the database. */
	fflush(stdout);
	if (res.st.errors > 0)
		ret = EXIT_RUN;
	if (bench_is_booking(cfg.workload)) {
		r = bench_verify(&cfg, &fx, &res);
		if (r == 1)
			ret = EXIT_VERDICT;
		else if (r == 2 && ret == EXIT_OK)
			ret = EXIT_RUN;
	}
out:
	bench_fixture_logout(&cfg, &fx);
	bench_stats_free(&res.st);
	bench_fixture_free(&fx);
	return ret;
}
