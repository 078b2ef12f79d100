#include "proxywait.h"

#include <errno.h>
#include <event2/event.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "log.h"
#include "proxyproto.h"
#include "util.h"

/* One socket whose header is being read. */
struct pw_sock {
	struct proxywait *pw;
	evutil_socket_t fd;
	struct event *ev;           /* readable */
	struct event *timer;        /* the whole header's time */
	struct sockaddr_storage peer;   /* the balancer */
	int peerlen;
	char tag[96];               /* "line 10.0.0.5:41234" */
	struct proxyproto p;
	TAILQ_ENTRY(pw_sock) entry;
};

struct proxywait {
	struct event_base *base;
	const char *what;
	proxywait_done done;
	void *arg;
	TAILQ_HEAD(, pw_sock) socks;
	size_t n;
};

struct proxywait *
proxywait_new(struct event_base *base, const char *what, proxywait_done done,
    void *arg)
{
	struct proxywait *pw = xcalloc(1, sizeof *pw);

	pw->base = base;
	pw->what = what;
	pw->done = done;
	pw->arg = arg;
	TAILQ_INIT(&pw->socks);
	return pw;
}

/* Forgets s; closes its socket unless it was handed on. */
static void
sock_free(struct pw_sock *s, bool close_fd)
{
	TAILQ_REMOVE(&s->pw->socks, s, entry);
	s->pw->n--;
	event_free(s->ev);
	event_free(s->timer);
	if (close_fd)
		evutil_closesocket(s->fd);
	free(s);
}

static void
sock_refuse(struct pw_sock *s, const char *why)
{
	log_info("%s closed: %s", s->tag, why);
	sock_free(s, true);
}

static void
sock_done(struct pw_sock *s)
{
	struct proxywait *pw = s->pw;
	struct sockaddr_storage sa;
	evutil_socket_t fd = s->fd;
	char host[64] = "?", port[16] = "?";
	int salen;

	if (s->p.has_addr) {
		memcpy(&sa, &s->p.src, sizeof sa);
		salen = (int)s->p.srclen;
		getnameinfo((struct sockaddr *)&sa, (socklen_t)salen, host,
		    sizeof host, port, sizeof port,
		    NI_NUMERICHOST | NI_NUMERICSERV);
		log_debug("%s: PROXY v%d: client %s:%s", s->tag, s->p.version,
		    host, port);
	} else {
		memcpy(&sa, &s->peer, sizeof sa);
		salen = s->peerlen;
		log_debug("%s: PROXY v%d without a client (LOCAL or UNKNOWN): "
		    "served as the balancer", s->tag, s->p.version);
	}
	sock_free(s, false);
	pw->done(fd, (struct sockaddr *)&sa, salen, pw->arg);
}

/*
 * Peeks at what has come, lets the parser say how much of it is header,
 * and takes exactly that from the socket: the bytes after the header
 * (the TLS ClientHello) stay for the handshake. Something is taken on
 * every call, so a socket that is readable is never seen twice with the
 * same bytes.
 */
static void
sock_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pw_sock *s = arg;
	unsigned char buf[PROXYPROTO_MAX];
	ssize_t n;
	size_t used;

	n = recv(fd, buf, sizeof buf, MSG_PEEK);
	if (n == 0) {
		sock_refuse(s, "closed before the end of its PROXY header");
		return;
	}
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		sock_refuse(s, strerror(errno));
		return;
	}
	used = proxyproto_feed(&s->p, buf, (size_t)n);
	if (recv(fd, buf, used, 0) != (ssize_t)used) {
		sock_refuse(s, "cannot take its PROXY header from the socket");
		return;
	}
	switch (s->p.status) {
	case PROXYPROTO_MORE:
		break;
	case PROXYPROTO_ERROR:
		sock_refuse(s, s->p.error);
		break;
	case PROXYPROTO_DONE:
		sock_done(s);
		break;
	}
}

static void
sock_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	sock_refuse(arg, "no complete PROXY header in time");
}

void
proxywait_add(struct proxywait *pw, evutil_socket_t fd,
    const struct sockaddr *sa, int salen, int timeout)
{
	struct pw_sock *s = xcalloc(1, sizeof *s);
	struct timeval tv = {(time_t)timeout, 0};
	char host[64] = "?", port[16] = "?";

	s->pw = pw;
	s->fd = fd;
	if (salen > (int)sizeof s->peer)
		salen = (int)sizeof s->peer;
	memcpy(&s->peer, sa, (size_t)salen);
	s->peerlen = salen;
	getnameinfo(sa, (socklen_t)salen, host, sizeof host, port,
	    sizeof port, NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(s->tag, sizeof s->tag, "%s %s:%s", pw->what, host, port);
	proxyproto_init(&s->p);
	if ((s->ev = event_new(pw->base, fd, EV_READ | EV_PERSIST,
	    sock_read_cb, s)) == NULL ||
	    (s->timer = evtimer_new(pw->base, sock_timer_cb, s)) == NULL)
		fatal("proxywait: out of memory");
	TAILQ_INSERT_TAIL(&pw->socks, s, entry);
	pw->n++;
	event_add(s->ev, NULL);
	evtimer_add(s->timer, &tv);
	log_debug("%s: waiting for its PROXY header", s->tag);
}

size_t
proxywait_pending(const struct proxywait *pw)
{
	return pw != NULL ? pw->n : 0;
}

void
proxywait_free(struct proxywait *pw)
{
	struct pw_sock *s;

	if (pw == NULL)
		return;
	while ((s = TAILQ_FIRST(&pw->socks)) != NULL)
		sock_free(s, true);
	free(pw);
}
