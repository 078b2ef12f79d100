#include "metrics_listen.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

struct metrics_listen {
	struct evhttp *http;
};

/* Every request: the metrics at /metrics, 404 elsewhere. libevent's
 * HTTP server is enough here: one small answer, no TLS, no cookies. */
static void
serve(struct evhttp_request *req, void *arg)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *b;

	evhttp_add_header(h, "Cache-Control", "no-store");
	if (path == NULL || strcmp(path, "/metrics") != 0) {
		evhttp_send_error(req, HTTP_NOTFOUND, NULL);
		return;
	}
	if ((b = evbuffer_new()) == NULL)
		fatal("out of memory");
	metrics_render(b);
	evhttp_add_header(h, "Content-Type",
	    "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, HTTP_OK, "OK", b);
	evbuffer_free(b);
}

struct metrics_listen *
metrics_listen_new(struct event_base *base)
{
	struct metrics_listen *ml = xcalloc(1, sizeof *ml);

	if ((ml->http = evhttp_new(base)) == NULL)
		fatal("out of memory");
	evhttp_set_allowed_methods(ml->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_max_headers_size(ml->http, 8192);
	evhttp_set_max_body_size(ml->http, 0);
	evhttp_set_timeout(ml->http, 10);
	evhttp_set_gencb(ml->http, serve, ml);
	return ml;
}

bool
metrics_listen_add(struct metrics_listen *ml, const char *spec)
{
	char *host, *port;
	long long p;
	bool ok;

	if (!config_split_hostport(spec, &host, &port))
		return false;
	/* Start-up only: a blocking lookup is harmless here. */
	ok = parse_ll(port, 0, 65535, &p) &&
	    evhttp_bind_socket_with_handle(ml->http, host, (ev_uint16_t)p) !=
	    NULL;
	if (!ok)
		log_error("cannot listen (metrics) on %s", spec);
	else
		log_info("metrics on http://%s/metrics", spec);
	free(host);
	free(port);
	return ok;
}

void
metrics_listen_free(struct metrics_listen *ml)
{
	if (ml == NULL)
		return;
	evhttp_free(ml->http);
	free(ml);
}
