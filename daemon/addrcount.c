#include "addrcount.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct addrcount_entry {
	char addr[64];
	size_t n;
	struct addrcount_entry *next;
};

#define BUCKETS 1024

struct addrcount {
	struct addrcount_entry *b[BUCKETS];
};

struct addrcount *
addrcount_new(void)
{
	return xcalloc(1, sizeof(struct addrcount));
}

void
addrcount_free(struct addrcount *t)
{
	free(t);
}

static struct addrcount_entry **
slot(struct addrcount *t, const char *addr)
{
	unsigned h = 5381;
	const char *p;
	struct addrcount_entry **e;

	for (p = addr; *p; p++)
		h = h * 33 + (unsigned char)*p;
	for (e = &t->b[h % BUCKETS]; *e != NULL; e = &(*e)->next)
		if (strcmp((*e)->addr, addr) == 0)
			break;
	return e;
}

size_t
addrcount_open(const struct addrcount *t, const char *addr)
{
	/* slot() does not change the table. */
	struct addrcount_entry *e = *slot((struct addrcount *)t, addr);

	return e != NULL ? e->n : 0;
}

struct addrcount_entry *
addrcount_take(struct addrcount *t, const char *addr)
{
	struct addrcount_entry **e = slot(t, addr);

	if (*e == NULL) {
		*e = xcalloc(1, sizeof **e);
		snprintf((*e)->addr, sizeof (*e)->addr, "%s", addr);
	}
	(*e)->n++;
	return *e;
}

void
addrcount_drop(struct addrcount *t, struct addrcount_entry *e)
{
	struct addrcount_entry **s;

	if (--e->n > 0)
		return;
	s = slot(t, e->addr);
	*s = e->next;
	free(e);
}
