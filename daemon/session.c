#include "session.h"

#include <string.h>

static const struct {
	enum role role;
	const char *name;
} role_names[] = {
	{ROLE_ANON, "anonymous"},
	{ROLE_ADMIN, "admin"},
	{ROLE_PARTNER, "partner"},
	{ROLE_REFERENT, "referent"},
};

enum role
role_from_name(const char *name)
{
	size_t i;

	/* "anonymous" is never a stored role: it maps to ROLE_ANON anyway. */
	for (i = 1; i < sizeof role_names / sizeof role_names[0]; i++)
		if (strcmp(role_names[i].name, name) == 0)
			return role_names[i].role;
	return ROLE_ANON;
}

const char *
role_name(enum role role)
{
	size_t i;

	for (i = 0; i < sizeof role_names / sizeof role_names[0]; i++)
		if (role_names[i].role == role)
			return role_names[i].name;
	return role_names[0].name;
}
