#include "system.h"

#include <jansson.h>
#include <stdio.h>
#include <time.h>

#include "db.h"
#include "migrate.h"
#include "rpc.h"
#include "server.h"
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

void
sys_health(struct request *req)
{
	rpc_reply(req, json_pack("{s:s, s:I, s:I, s:I}", "db",
	    db_pool_up(srv->db) ? "ok" : "down", "uptime_s",
	    (json_int_t)((now_ms() - srv->started_ms) / 1000), "connections",
	    (json_int_t)srv->nconns, "requests", (json_int_t)srv->requests));
}
