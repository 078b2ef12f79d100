#include "system.h"

#include <jansson.h>
#include <stdio.h>
#include <time.h>

#include "app.h"
#include "booking_batch.h"
#include "db.h"
#include "migrate.h"
#include "rpc.h"
#include "version.h"

void
sys_time_now(char *buf, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void
sys_ping(struct request *req)
{
	char now[32];

	sys_time_now(now, sizeof now);
	rpc_reply(req, json_pack("{s:b, s:s}", "pong", 1, "time", now));
}

void
sys_version(struct request *req)
{
	rpc_reply(req, json_pack("{s:s, s:s, s:i, s:i}", "name",
	    STRAPONTIN_NAME, "version", STRAPONTIN_VERSION, "protocol",
	    STRAPONTIN_PROTOCOL, "schema", migrate_latest()));
}

/* Load balancers only need to know whether the database answers; how busy
 * the daemon is is for logged-in users. */
void
sys_health(struct request *req)
{
	const struct app *a = req->app;
	json_t *r = json_pack("{s:s}", "db", db_pool_up(a->db) ? "ok" : "down");

	if (rpc_peer_role(req->peer) != ROLE_ANON) {
		unsigned long long calls, booked;

		json_object_set_new(r, "uptime_s", json_integer((json_int_t)
		    ((now_ms() - a->started_ms) / 1000)));
		json_object_set_new(r, "connections",
		    json_integer((json_int_t)a->connections));
		json_object_set_new(r, "requests",
		    json_integer((json_int_t)rpc_requests_total()));
		booking_batch_stats(&calls, &booked);
		json_object_set_new(r, "booking_batches", json_pack("{s:I, s:I}",
		    "calls", (json_int_t)calls, "requests", (json_int_t)booked));
	}
	rpc_reply(req, r);
}
