#include "app.h"

#include <stdlib.h>

#include "config.h"
#include "util.h"

struct app *
app_new(struct event_base *base, struct db_pool *db, struct workpool *workers,
    const struct config *cfg)
{
	struct app *a = xcalloc(1, sizeof *a);

	a->base = base;
	a->db = db;
	a->workers = workers;
	a->started_ms = now_ms();
	app_set_config(a, cfg);
	return a;
}

void
app_free(struct app *a)
{
	if (a == NULL)
		return;
	free(a->policy_json);
	free(a);
}

void
app_set_config(struct app *a, const struct config *cfg)
{
	a->cfg = cfg;
	free(a->policy_json);
	a->policy_json = config_policy_json(cfg);
}

void
app_connection_opened(struct app *a)
{
	a->connections++;
}

void
app_connection_closed(struct app *a)
{
	a->connections--;
}
