/*
 * A command's params: the spec language of cli_table.c, turning
 * "--field value" arguments into the method's params object, the help
 * that lists them, and the times people type.
 *
 * Values are checked here as far as the CLI can (numbers, ids, booleans,
 * enumerations, times) so that a typo is a usage error (exit 2) with the
 * flag's name, before any connection. The server checks everything again.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ticket.h"

static const struct {
	const char *type;
	enum cli_ptype t;
	const char *meta; /* placeholder in help */
} ptypes[] = {
    {"str", CP_STRING, "TEXT"},
    {"text", CP_TEXT, "TEXT"},
    {"int", CP_INT, "N"},
    {"id", CP_ID, "ID"},
    {"bool", CP_BOOL, "[BOOL]"},
    {"email", CP_EMAIL, "EMAIL"},
    {"time", CP_TIME, "TIME"},
    {"date", CP_DATE, "YYYY-MM-DD"},
    {"hhmm", CP_HHMM, "HH:MM"},
    {"ids", CP_IDS, "ID,ID,..."},
    {"strs", CP_STRS, "NAME,NAME,..."},
    {"cursor", CP_CURSOR, "CURSOR"},
    {"ticket", CP_TICKET, "CODE"},
};
#define NPTYPES (sizeof ptypes / sizeof ptypes[0])

/* One line about a param, shown by --help; names not here get none. */
static const struct {
	const char *name;
	const char *help;
} param_help[] = {
    {"accessibility", N_("access for people with disabilities")},
    {"category", N_("what kind of outing")},
    {"city", N_("town")},
    {"delivery", N_("how the tickets reach people")},
    {"description", N_("a few lines about it")},
    {"email", N_("e-mail address (an account's login; a person's, for "
	     "their reminders)")},
    {"first_name", N_("given name")},
    {"kind", N_("what kind of organisation")},
    {"last_name", N_("family name")},
    {"location", N_("where it takes place")},
    {"name", N_("its name")},
    {"postal_code", N_("where the person lives")},
    {"role", N_("admin, partner staff or referent")},
    {"state", N_("where it stands")},
    {"status", N_("where it stands")},
    {"title", N_("what people will see")},
    {"token", N_("a session token")},
    {"venue", N_("the hall or place")},
    {"available_only", N_("only offers with seats left")},
    {"beneficiary_id", N_("the person")},
    {"birth_year", N_("year of birth")},
    {"birth_date", N_("date of birth: only for the identity key, never stored")},
    {"booking_deadline", N_("last time to book (default: 48 h before)")},
    {"booking_id", N_("the booking")},
    {"choices", N_("1 to 3 offer ids, best first")},
    {"code", N_("ticket code (case, blanks and dashes do not matter; O is "
	     "read as 0, I and L as 1)")},
    {"consent", N_("the person agreed to the processing of this data")},
    {"contact_email", N_("who to write to")},
    {"count", N_("how many dates in the series")},
    {"cursor", N_("where the previous page stopped")},
    {"display_name", N_("name shown to others")},
    {"end_time", N_("local end time")},
    {"ends_at", N_("end time")},
    {"entry_id", N_("the waiting-list entry")},
    {"from", N_("from this time on")},
    {"from_date", N_("first day of the series")},
    {"group_by", N_("one row per")},
    {"household_size", N_("people in the household")},
    {"idempotency_key", N_("the same key twice books once")},
    {"limit", N_("items per page (default 50, at most 500)")},
    {"mail_off", N_("the notices to turn off, replacing the list")},
    {"max_per_booking", N_("seats one booking may take (default 4)")},
    {"nth", N_("1 to 5, or -1 for the last in the month")},
    {"offer_id", N_("the offer")},
    {"partner_id", N_("the partner")},
    {"permanence_id", N_("the drop-in")},
    {"query", N_("part of a name")},
    {"reason", N_("why, for the people who booked")},
    {"reminders", N_("the person agreed to get their voucher and a reminder "
	     "by e-mail")},
    {"seats", N_("number of seats")},
    {"start_time", N_("local start time")},
    {"starts_at", N_("start time")},
    {"structure_id", N_("the structure")},
    {"territory", N_("area the structure serves")},
    {"target_structure_ids", N_("keep the offer for these structures")},
    {"target_territories", N_("keep the offer for the structures of these "
			     "territories")},
    {"opens_to_all_at", N_("when a kept offer opens to everyone")},
    {"opens_to_all_hours", N_("hours before the show when a kept offer "
			      "opens to everyone (instead of a time)")},
    {"timezone", N_("IANA zone (default Europe/Paris)")},
    {"to", N_("before this time")},
    {"user_id", N_("the account")},
    {"weekday", N_("day of the week")},
    {"address", N_("the venue's street address, shown on vouchers")},
    {"notes", N_("what to know or bring, shown to the public")},
    {"until_date", N_("last day of the series (instead of count)")},
    {"deadline_hours", N_("hours before each start when booking closes "
			  "(default 48)")},
    {"scope", N_("this: this offer only (default); following: and the "
		 "later ones of its series")},
    {"arrived_late", N_("bookings seen coming in late, without a scan: "
	     "attended")},
    {"at", N_("end of the window counted (default now)")},
    {"waitlist_all", N_("if nothing is granted, wait for every full choice, "
		      "not the first only")},
};

const char *
cli_ptype_name(enum cli_ptype t)
{
	size_t i;

	for (i = 0; i < NPTYPES; i++)
		if (ptypes[i].t == t)
			return ptypes[i].type;
	return t == CP_ENUMS ? "enums" : "enum";
}

static const char *
ptype_meta(const struct cli_param *p)
{
	size_t i;

	if (p->type == CP_ENUM)
		return "WORD";
	if (p->type == CP_ENUMS)
		return "WORD,...";
	for (i = 0; i < NPTYPES; i++)
		if (ptypes[i].t == p->type)
			return ptypes[i].meta;
	return "VALUE";
}

static int
parse_word(const char *w, size_t len, struct cli_param *p)
{
	char word[80], *colon, *type, *mark;
	size_t i, nl;

	memset(p, 0, sizeof *p);
	if (len >= sizeof word)
		return -1;
	memcpy(word, w, len);
	word[len] = '\0';
	/* Marks at the end, in any order. */
	while (len > 0 && strchr("!?*", word[len - 1]) != NULL) {
		mark = &word[len - 1];
		if (*mark == '!')
			p->required = true;
		else if (*mark == '?')
			p->nullable = true;
		else
			p->secret = true;
		*mark = '\0';
		len--;
	}
	type = NULL;
	if ((colon = strchr(word, ':')) != NULL) {
		*colon = '\0';
		type = colon + 1;
	}
	nl = strlen(word);
	if (nl == 0 || nl >= sizeof p->name)
		return -1;
	memcpy(p->name, word, nl + 1);
	if (type == NULL)
		type =
		    nl > 3 && strcmp(word + nl - 3, "_id") == 0 ? "id" : "str";
	for (i = 0; i < NPTYPES; i++)
		if (strcmp(ptypes[i].type, type) == 0) {
			p->type = ptypes[i].t;
			return 0;
		}
	/* "name:topic[]": several of an enumeration. */
	p->type = CP_ENUM;
	if ((nl = strlen(type)) > 2 && strcmp(type + nl - 2, "[]") == 0) {
		type[nl - 2] = '\0';
		p->type = CP_ENUMS;
	}
	if ((p->choices = cli_enum_values(type)) == NULL ||
	    strlen(type) >= sizeof p->enum_name)
		return -1;
	snprintf(p->enum_name, sizeof p->enum_name, "%s", type);
	return 0;
}

int
cli_params_parse(const char *spec, struct cli_param *out, size_t max, size_t *n)
{
	const char *s = spec, *e;

	*n = 0;
	for (;;) {
		while (*s == ' ')
			s++;
		if (*s == '\0')
			return 0;
		e = s + strcspn(s, " ");
		if (*n >= max ||
		    parse_word(s, (size_t)(e - s), &out[*n]) != 0) {
			cli_warnx(_("internal error: bad param spec '%.*s'"),
				  (int)(e - s), s);
			return -1;
		}
		(*n)++;
		s = e;
	}
}

/* ------------------------------------------------------------- values */

static bool
parse_ll(const char *s, long long *v)
{
	char *end;

	if (*s == '\0' || isspace((unsigned char)*s))
		return false;
	errno = 0;
	*v = strtoll(s, &end, 10);
	return errno == 0 && *end == '\0';
}

static int
parse_bool(const char *s, bool *b)
{
	static const char *const yes[] = {"true", "yes", "on", "1", NULL};
	static const char *const no[] = {"false", "no", "off", "0", NULL};
	size_t i;

	for (i = 0; yes[i] != NULL; i++)
		if (strcasecmp(s, yes[i]) == 0) {
			*b = true;
			return 0;
		}
	for (i = 0; no[i] != NULL; i++)
		if (strcasecmp(s, no[i]) == 0) {
			*b = false;
			return 0;
		}
	return -1;
}

static void
flag_name(const char *name, char *buf, size_t len)
{
	size_t i;

	snprintf(buf, len, "--%.40s", name);
	for (i = 2; buf[i] != '\0'; i++)
		if (buf[i] == '_')
			buf[i] = '-';
}

static json_t *
enum_value(const struct cli_param *p, const char *s)
{
	char alt[64];
	size_t i;

	/* concert-hall is fine for concert_hall: dashes everywhere else. */
	snprintf(alt, sizeof alt, "%s", s);
	for (i = 0; alt[i] != '\0'; i++)
		if (alt[i] == '-')
			alt[i] = '_';
	for (i = 0; p->choices[i] != NULL; i++)
		if (strcmp(s, p->choices[i]) == 0 ||
		    strcmp(alt, p->choices[i]) == 0)
			return json_string(p->choices[i]);
	return NULL;
}

/* "a,b,c", "all" for every choice, or "none" for an empty list (the
 * server says whether it may be empty). */
static json_t *
enums_value(const struct cli_param *p, const char *s)
{
	json_t *a = json_array(), *v;
	char word[64];
	size_t i, l;

	if (strcmp(s, "all") == 0) {
		for (i = 0; p->choices[i] != NULL; i++)
			json_array_append_new(a, json_string(p->choices[i]));
		return a;
	}
	if (strcmp(s, "none") == 0)
		return a;
	while (*s != '\0') {
		l = strcspn(s, ",");
		if (l == 0 || l >= sizeof word)
			goto fail;
		memcpy(word, s, l);
		word[l] = '\0';
		if ((v = enum_value(p, word)) == NULL)
			goto fail;
		json_array_append_new(a, v);
		s += l;
		if (*s == ',')
			s++;
	}
	if (json_array_size(a) > 0)
		return a;
fail:
	json_decref(a);
	return NULL;
}

static json_t *
ids_value(const char *s)
{
	json_t *a = json_array();
	char buf[32];
	const char *e;
	long long v;
	size_t l;

	if (*s == '[') /* JSON style is fine too */
		s++;
	while (*s != '\0' && *s != ']') {
		while (*s == ' ')
			s++;
		e = s + strcspn(s, ", ]");
		l = (size_t)(e - s);
		if (l == 0 || l >= sizeof buf)
			goto fail;
		memcpy(buf, s, l);
		buf[l] = '\0';
		if (!parse_ll(buf, &v) || v < 1)
			goto fail;
		json_array_append_new(a, json_integer(v));
		s = e;
		while (*s == ' ')
			s++;
		if (*s == ',')
			s++;
	}
	if (json_array_size(a) == 0)
		goto fail;
	return a;
fail:
	json_decref(a);
	return NULL;
}

/* "a,b,c": names (territories), blanks around each trimmed. */
static json_t *
strs_value(const char *s)
{
	json_t *a = json_array(), *v;
	size_t l, t;

	while (*s != '\0') {
		while (*s == ' ')
			s++;
		l = strcspn(s, ",");
		for (t = l; t > 0 && s[t - 1] == ' '; t--)
			;
		if (t == 0 || (v = json_stringn(s, t)) == NULL)
			goto fail;
		json_array_append_new(a, v);
		s += l;
		if (*s == ',')
			s++;
	}
	if (json_array_size(a) > 0)
		return a;
fail:
	json_decref(a);
	return NULL;
}

/* The JSON for a flag's value, or NULL with a message printed. */
static json_t *
param_value(struct cli *cli, const struct cli_param *p, const char *s)
{
	char flag[64], buf[40];
	enum ticket_status ts;
	long long v;
	bool b;
	json_t *j;
	size_t i;

	flag_name(p->name, flag, sizeof flag);
	if (p->nullable && strcmp(s, "null") == 0)
		return json_null();
	switch (p->type) {
	case CP_INT:
		if (parse_ll(s, &v))
			return json_integer(v);
		cli_warnx(_("%s: %s wants a whole number, not '%s'"), cli->words,
			  flag, s);
		return NULL;
	case CP_ID:
		if (parse_ll(s, &v) && v >= 1)
			return json_integer(v);
		cli_warnx(_("%s: %s wants an id (a number from 1), not '%s'"),
			  cli->words, flag, s);
		return NULL;
	case CP_BOOL:
		if (parse_bool(s, &b) == 0)
			return json_boolean(b);
		cli_warnx(_("%s: %s wants true or false, not '%s'"), cli->words,
			  flag, s);
		return NULL;
	case CP_TIME:
		if (cli_time_input(s, buf, sizeof buf))
			return json_string(buf);
		cli_warnx(_("%s: %s wants a time like 2025-06-14T20:30:00+02:00 "
			  "or 2025-06-14 20:30 (local), not '%s'"),
			  cli->words, flag, s);
		return NULL;
	case CP_IDS:
		if ((j = ids_value(s)) != NULL)
			return j;
		cli_warnx(_("%s: %s wants ids separated by commas (4,9,12), "
			  "not '%s'"),
			  cli->words, flag, s);
		return NULL;
	case CP_STRS:
		if ((j = strs_value(s)) != NULL)
			return j;
		cli_warnx(_("%s: %s wants names separated by commas "
			  "(Billom,Thiers), not '%s'"),
			  cli->words, flag, s);
		return NULL;
	case CP_TICKET:
		/* A misread character is caught here by the check character,
		 * without a round trip; the code goes out as the server
		 * shows it. */
		if ((ts = ticket_parse(s, strlen(s), buf)) == TICKET_OK)
			return json_string(buf);
		cli_warnx("%s: %s: '%s'", cli->words, ticket_reason(ts), s);
		return NULL;
	case CP_ENUM:
	case CP_ENUMS:
		j = p->type == CP_ENUM ? enum_value(p, s) : enums_value(p, s);
		if (j != NULL)
			return j;
		fprintf(stderr, _("strapontin: %s: %s wants %s"), cli->words, flag,
			p->type == CP_ENUM ? "one of"
					   : "some of (a,b), all or none:");
		for (i = 0; p->choices[i] != NULL; i++)
			fprintf(stderr, "%s %s", i ? "," : "", p->choices[i]);
		fprintf(stderr, _("; not '%s'\n"), s);
		return NULL;
	default:
		if ((j = json_string(s)) != NULL)
			return j;
		cli_warnx(_("%s: %s is not valid UTF-8"), cli->words, flag);
		return NULL;
	}
}

/* ------------------------------------------------------------ argv */

static const struct cli_param *
find_param(const struct cli_param *ps, size_t n, const char *name, size_t len)
{
	char key[64];
	size_t i;

	if (len >= sizeof key)
		return NULL;
	for (i = 0; i < len; i++)
		key[i] = name[i] == '-' ? '_' : name[i];
	key[len] = '\0';
	for (i = 0; i < n; i++)
		if (strcmp(ps[i].name, key) == 0)
			return &ps[i];
	return NULL;
}

/* --json, --csv, --all, --help: output flags allowed after the words. */
static int
output_flag(struct cli *cli, const char *a)
{
	if (strcmp(a, "--json") == 0)
		cli->format = FMT_JSON;
	else if (strcmp(a, "--csv") == 0)
		cli->format = FMT_CSV;
	else if (strcmp(a, "--all") == 0)
		cli->all = true;
	else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
		cli->help = true;
	else
		return 0;
	return 1;
}

static bool
looks_like_flag(const char *a)
{
	long long v;

	return a[0] == '-' && a[1] != '\0' && !parse_ll(a, &v);
}

static int
set_param(struct cli *cli, json_t *params, const struct cli_param *p,
	  const char *value)
{
	char flag[64];
	json_t *v;

	if (json_object_get(params, p->name) != NULL) {
		flag_name(p->name, flag, sizeof flag);
		cli_warnx(_("%s: %s given twice"), cli->words, flag);
		return EXIT_USAGE;
	}
	if ((v = param_value(cli, p, value)) == NULL)
		return EXIT_USAGE;
	json_object_set_new(params, p->name, v);
	return EXIT_OK;
}

int
cli_params_from_args(struct cli *cli, const struct cli_command *cmd, int argc,
		     char **argv, json_t **params)
{
	struct cli_param ps[CLI_MAX_PARAMS];
	const struct cli_param *p;
	const char *a, *name, *eq, *value;
	char flag[64];
	json_t *obj = NULL;
	bool options = true, positional_done = false, b;
	size_t n, i, nl;
	int k;

	*params = NULL;
	for (k = 0; k < argc; k++) {
		if (strcmp(argv[k], "--") == 0)
			break;
		if (strcmp(argv[k], "--help") == 0 ||
		    strcmp(argv[k], "-h") == 0) {
			/* Help wins over any mistake beside it. */
			cli->help = true;
			return EXIT_OK;
		}
	}
	if (cli_params_parse(cmd->params, ps, CLI_MAX_PARAMS, &n) != 0)
		return EXIT_USAGE;
	obj = json_object();
	for (k = 0; k < argc; k++) {
		a = argv[k];
		if (options && strcmp(a, "--") == 0) {
			options = false;
			continue;
		}
		if (options && output_flag(cli, a))
			continue;
		if (options && strncmp(a, "--", 2) == 0) {
			name = a + 2;
			eq = strchr(name, '=');
			nl = eq ? (size_t)(eq - name) : strlen(name);
			p = find_param(ps, n, name, nl);
			if (p == NULL) {
				cli_warnx(_("%s: unknown option --%.*s (see "
					  "'strapontin %s --help')"),
					  cli->words, (int)nl, name,
					  cli->words);
				goto usage;
			}
			flag_name(p->name, flag, sizeof flag);
			if (p->secret) {
				cli_warnx(_("%s: %s is never taken from the "
					  "command line, where others could "
					  "see it: it is asked for, or read "
					  "from standard input"),
					  cli->words, flag);
				goto usage;
			}
			if (eq != NULL)
				value = eq + 1;
			else if (p->type == CP_BOOL)
				/* A bare boolean flag means true; an
				 * explicit word may follow. */
				value = k + 1 < argc &&
						parse_bool(argv[k + 1], &b) == 0
					    ? argv[++k]
					    : "true";
			else if (k + 1 < argc)
				value = argv[++k];
			else {
				cli_warnx(_("%s: %s needs a value"), cli->words,
					  flag);
				goto usage;
			}
			if (set_param(cli, obj, p, value) != EXIT_OK)
				goto usage;
			continue;
		}
		if (options && looks_like_flag(a)) {
			cli_warnx(_("%s: unknown option %s (see 'strapontin %s "
				  "--help')"),
				  cli->words, a, cli->words);
			goto usage;
		}
		if (cmd->positional == NULL || positional_done) {
			cli_warnx(_("%s: unexpected argument '%s' (see "
				  "'strapontin %s --help')"),
				  cli->words, a, cli->words);
			goto usage;
		}
		positional_done = true;
		p = find_param(ps, n, cmd->positional, strlen(cmd->positional));
		if (p == NULL) {
			cli_warnx(_("internal error: %s: no param %s"), cli->words,
				  cmd->positional);
			goto usage;
		}
		if (set_param(cli, obj, p, a) != EXIT_OK)
			goto usage;
	}
	for (i = 0; i < n; i++) {
		if (!ps[i].required || json_object_get(obj, ps[i].name) ||
		    ps[i].secret)
			continue;
		flag_name(ps[i].name, flag, sizeof flag);
		if (cmd->positional != NULL &&
		    strcmp(cmd->positional, ps[i].name) == 0)
			cli_warnx(_("%s: which %s? give it first or as %s"),
				  cli->words, ps[i].name, flag);
		else
			cli_warnx(_("%s: %s is required (see 'strapontin %s "
				  "--help')"),
				  cli->words, flag, cli->words);
		goto usage;
	}
	*params = obj;
	return EXIT_OK;
usage:
	json_decref(obj);
	return EXIT_USAGE;
}

/* A value for `call`: JSON if it parses as JSON, else the string. */
static json_t *
generic_value(const char *s)
{
	json_t *v = json_loads(s, JSON_DECODE_ANY, NULL);

	return v != NULL ? v : json_string(s);
}

int
cli_params_generic(struct cli *cli, int argc, char **argv, json_t **params)
{
	const char *name, *eq, *value;
	char key[128];
	json_t *p = json_object(), *v;
	size_t kl, i;
	int k;

	for (k = 0; k < argc; k++) {
		if (output_flag(cli, argv[k]))
			continue;
		if (strncmp(argv[k], "--", 2) != 0 || argv[k][2] == '\0') {
			cli_warnx(_("call: expected --field value, not '%s'"),
				  argv[k]);
			goto fail;
		}
		name = argv[k] + 2;
		if ((eq = strchr(name, '=')) != NULL) {
			kl = (size_t)(eq - name);
			value = eq + 1;
		} else {
			kl = strlen(name);
			if (k + 1 >= argc) {
				cli_warnx(_("call: --%s needs a value"), name);
				goto fail;
			}
			value = argv[++k];
		}
		if (kl == 0 || kl >= sizeof key) {
			cli_warnx(_("call: bad field name '%s'"), argv[k]);
			goto fail;
		}
		for (i = 0; i < kl; i++)
			key[i] = name[i] == '-' ? '_' : name[i];
		key[kl] = '\0';
		if (json_object_get(p, key) != NULL) {
			cli_warnx(_("call: field %s given twice"), key);
			goto fail;
		}
		if ((v = generic_value(value)) == NULL) {
			cli_warnx(_("call: --%s: value is not valid UTF-8"), key);
			goto fail;
		}
		json_object_set_new(p, key, v);
	}
	*params = p;
	return EXIT_OK;
fail:
	json_decref(p);
	return EXIT_USAGE;
}

/* ------------------------------------------------------------ help */

static const char *
help_of(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof param_help / sizeof param_help[0]; i++)
		if (strcmp(param_help[i].name, name) == 0)
			return param_help[i].help;
	return NULL;
}

static void
upper(const char *s, char *buf, size_t len)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i + 1 < len; i++)
		buf[i] = (char)toupper((unsigned char)s[i]);
	buf[i] = '\0';
}

/* Appends to a growing description, "; " between parts. */
static void
desc_add(char *buf, size_t len, const char *part)
{
	size_t l = strlen(buf);

	snprintf(buf + l, len - l, "%s%s", l ? "; " : "", part);
}

/* text wrapped before column 80 at spaces; the first word goes where the cursor
 * is (column `at`), the next lines start at column `col`. */
static void
print_wrapped(FILE *f, const char *text, int col, int at)
{
	const char *s = text, *e;
	int pos = at;
	bool first = true;

	while (*s != '\0') {
		e = s + strcspn(s, " ");
		if (!first && pos + 1 + (e - s) > 79) {
			fprintf(f, "\n%*s", col, "");
			pos = col;
		} else if (!first) {
			fputc(' ', f);
			pos++;
		}
		/* \001 is a space that does not break: "--seats N". */
		for (const char *c = s; c < e; c++)
			fputc(*c == '\001' ? ' ' : *c, f);
		pos += (int)(e - s);
		first = false;
		s = *e ? e + 1 : e;
	}
	fputc('\n', f);
}

void
cli_params_help(FILE *f, const struct cli_command *cmd)
{
	struct cli_param ps[CLI_MAX_PARAMS];
	char flag[64], left[96], pos[64], desc[512], line[1024];
	const char *h;
	bool any_time = false, optional = false;
	size_t n, i, j;
	int w;

	if (cli_params_parse(cmd->params, ps, CLI_MAX_PARAMS, &n) != 0)
		return;
	pos[0] = '\0';
	if (cmd->positional != NULL)
		upper(cmd->positional, pos, sizeof pos);
	/* The usage line names what is required. */
	snprintf(line, sizeof line, "strapontin %s%s%s%s%s", cmd->noun,
		 cmd->verb ? " " : "", cmd->verb ? cmd->verb : "",
		 pos[0] ? " " : "", pos);
	for (i = 0; i < n; i++) {
		if (cmd->positional && strcmp(cmd->positional, ps[i].name) == 0)
			continue;
		if (!ps[i].required || ps[i].secret) {
			optional |= !ps[i].secret;
			continue;
		}
		flag_name(ps[i].name, flag, sizeof flag);
		snprintf(line + strlen(line), sizeof line - strlen(line),
			 " %s\001%s", flag, ptype_meta(&ps[i]));
	}
	if (optional)
		snprintf(line + strlen(line), sizeof line - strlen(line),
			 " [options]");
	fputs(_("usage: "), f);
	print_wrapped(f, line, 7, 7);
	fprintf(f, "\n%s", _(cmd->help));
	if (cmd->method != NULL)
		fprintf(f, _(" (method %s)"), cmd->method);
	fprintf(f, ".\n");
	if (n > 0)
		fprintf(f, "\n");
	for (i = 0; i < n; i++) {
		desc[0] = '\0';
		if (ps[i].secret) {
			snprintf(left, sizeof left, "%.40s", ps[i].name);
			desc_add(desc, sizeof desc,
				 _("asked for on the terminal, or read from "
				 "standard input; never a flag"));
		} else {
			flag_name(ps[i].name, flag, sizeof flag);
			if (cmd->positional &&
			    strcmp(cmd->positional, ps[i].name) == 0)
				snprintf(left, sizeof left, "%s, %s %s", pos,
					 flag, ptype_meta(&ps[i]));
			else
				snprintf(left, sizeof left, "%s %s", flag,
					 ptype_meta(&ps[i]));
			if (ps[i].required)
				desc_add(desc, sizeof desc, _("required"));
			if ((h = help_of(ps[i].name)) != NULL)
				desc_add(desc, sizeof desc, _(h));
			if (ps[i].type == CP_ENUM || ps[i].type == CP_ENUMS) {
				char list[400];

				snprintf(list, sizeof list, "%s",
					 ps[i].type == CP_ENUM
					     ? _("one of:")
					     : _("'all', 'none', or some of (a,b):"));

				for (j = 0; ps[i].choices[j] != NULL; j++)
					snprintf(list + strlen(list),
						 sizeof list - strlen(list),
						 "%s %s", j ? "," : "",
						 ps[i].choices[j]);
				desc_add(desc, sizeof desc, list);
			}
			if (ps[i].nullable)
				desc_add(desc, sizeof desc, _("'null' clears it"));
		}
		w = fprintf(f, "  %s", left);
		if (w > 27)
			fprintf(f, "\n%*s", 28, "");
		else
			fprintf(f, "%*s", 28 - w, "");
		w = 28;
		print_wrapped(f, desc[0] ? desc : "-", 28, w);
		if (ps[i].type == CP_TIME)
			any_time = true;
	}
	if (any_time)
		fprintf(f, _("\nTIME is RFC 3339 (2025-06-14T20:30:00+02:00, "
			   "2025-06-14T18:30:00Z) or a local\n"
			   "time: '2025-06-14 20:30', 2025-06-14 (midnight), "
			   "now, today, tomorrow.\n"));
	fprintf(f, _("\noutput: --json (the result, exactly)%s\n"),
		cmd->flags & CMD_LIST
		    ? ", --csv (a header row, then a row per\n"
		      "item), --all (every page, not only the first)"
		    : "");
}

/* ------------------------------------------------------------ times */

static int
digits(const char **s, int n)
{
	int v = 0;

	while (n-- > 0) {
		if (!isdigit((unsigned char)**s))
			return -1;
		v = v * 10 + (**s - '0');
		(*s)++;
	}
	return v;
}

static int
days_in_month(int y, int m)
{
	static const int days[] = {31, 28, 31, 30, 31, 30,
				   31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

/* "YYYY-MM-DD[(T| )HH:MM[:SS[.frac]]][Z|(+|-)HH:MM]". *has_time and
 * *has_zone say what was there; *offset is seconds east of UTC. */
static bool
parse_stamp(const char *s, struct tm *tm, bool *has_time, bool *has_zone,
	    long *offset)
{
	int y, mo, d, h = 0, mi = 0, se = 0, oh, om;

	memset(tm, 0, sizeof *tm);
	*has_time = *has_zone = false;
	*offset = 0;
	if ((y = digits(&s, 4)) < 0 || *s++ != '-' ||
	    (mo = digits(&s, 2)) < 0 || *s++ != '-' || (d = digits(&s, 2)) < 0)
		return false;
	if (*s == 'T' || *s == 't' || *s == ' ') {
		s++;
		*has_time = true;
		if ((h = digits(&s, 2)) < 0 || *s++ != ':' ||
		    (mi = digits(&s, 2)) < 0)
			return false;
		if (*s == ':') {
			s++;
			if ((se = digits(&s, 2)) < 0)
				return false;
			if (*s == '.') {
				s++;
				if (!isdigit((unsigned char)*s))
					return false;
				while (isdigit((unsigned char)*s))
					s++;
			}
		}
		if (*s == 'Z' || *s == 'z') {
			s++;
			*has_zone = true;
		} else if (*s == '+' || *s == '-') {
			int sign = *s++ == '-' ? -1 : 1;

			if ((oh = digits(&s, 2)) < 0 || *s++ != ':' ||
			    (om = digits(&s, 2)) < 0 || oh > 23 || om > 59)
				return false;
			*has_zone = true;
			*offset = sign * (oh * 3600L + om * 60L);
		}
	}
	if (*s != '\0' || mo < 1 || mo > 12 || d < 1 ||
	    d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 60)
		return false;
	tm->tm_year = y - 1900;
	tm->tm_mon = mo - 1;
	tm->tm_mday = d;
	tm->tm_hour = h;
	tm->tm_min = mi;
	tm->tm_sec = se;
	return true;
}

bool
cli_time_parse(const char *s, time_t *t)
{
	struct tm tm;
	bool has_time, has_zone;
	long off;

	if (s == NULL || !parse_stamp(s, &tm, &has_time, &has_zone, &off) ||
	    !has_zone)
		return false;
	*t = timegm(&tm) - off;
	return true;
}

bool
cli_time_input(const char *s, char *out, size_t outlen)
{
	struct tm tm;
	bool has_time, has_zone;
	long off;
	time_t t;

	if (strcmp(s, "now") == 0) {
		t = time(NULL);
	} else if (strcmp(s, "today") == 0 || strcmp(s, "tomorrow") == 0) {
		t = time(NULL);
		localtime_r(&t, &tm);
		tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
		if (strcmp(s, "tomorrow") == 0)
			tm.tm_mday++;
		tm.tm_isdst = -1;
		if ((t = mktime(&tm)) == (time_t)-1)
			return false;
	} else {
		if (!parse_stamp(s, &tm, &has_time, &has_zone, &off))
			return false;
		if (has_zone)
			t = timegm(&tm) - off;
		else {
			/* A local time; mktime() decides on summer time. */
			tm.tm_isdst = -1;
			if ((t = mktime(&tm)) == (time_t)-1)
				return false;
		}
	}
	gmtime_r(&t, &tm);
	return strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0;
}

const char *
cli_time_local(const char *rfc3339, bool with_zone, char *buf, size_t len)
{
	time_t t;

	if (!cli_time_parse(rfc3339, &t))
		return rfc3339;
	cli_time_words(t, with_zone, buf, len);
	return buf[0] != '\0' ? buf : rfc3339;
}
