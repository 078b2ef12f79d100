/*
 * The application's context: what every handler may need, reached
 * through its request (req->app), never through a global. The assembly
 * (server.c) makes one and keeps it current with app_set_config(); only
 * app.c writes its fields.
 */
#ifndef APP_H
#define APP_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct db_pool;
struct workpool;
struct config;

struct app {
	struct event_base *base;
	struct db_pool *db;
	struct db_pool *replica;    /* the read pool on standbys, or NULL */
	struct workpool *workers;
	const struct config *cfg;   /* the running configuration */
	char *policy_json;          /* its [policy], for the SQL functions */
	uint64_t started_ms;
	size_t connections;         /* open, every transport */
};

struct app *app_new(struct event_base *base, struct db_pool *db,
    struct workpool *workers, const struct config *cfg);
void app_free(struct app *a);
/* A new configuration (after SIGHUP); cfg stays owned by the caller. */
void app_set_config(struct app *a, const struct config *cfg);
void app_connection_opened(struct app *a);
void app_connection_closed(struct app *a);

#endif
