/*
 * Permanences: a structure's drop-ins, their blocks of seats, wishes, the
 * draw and claims (docs/protocol.md, sql/api/60_permanences.sql).
 *
 * Parameter schemas and the method table rows, included by methods.c after
 * its own schemas, where REFERENTS, SQL() and LIST_PARAMS are defined; put
 * PERMANENCE_METHODS inside its methods[] table. All the logic, scope
 * included, is in the SQL functions; the schemas only check types and
 * ranges (nth 0, or a time range the wrong way round, is refused there).
 */
#ifndef METHODS_PERMANENCE_H
#define METHODS_PERMANENCE_H

static const char *const permanence_weekdays[] = {"monday", "tuesday",
    "wednesday", "thursday", "friday", "saturday", "sunday", NULL};
static const char *const permanence_states[] = {"scheduled", "open",
    "drawn", "closed", NULL};

/* A complete terminator: clang's -Wextra (-Wmissing-field-initializers)
 * refuses a bare {NULL}. */
#define PERMANENCE_END {NULL, PT_INT, 0, 0, 0, NULL}

#define PERMANENCE_TEXT_FIELDS \
	{"title", PT_STRING, 0, 1, 200, NULL}, \
	{"location", PT_STRING, 0, 1, 200, NULL}, \
	{"notes", PT_TEXT, 0, 1, 1000, NULL}, \
	{"structure_id", PT_ID, 0, 0, 0, NULL}

static const struct param permanence_schedule_params[] = {
	{"starts_at", PT_TIME, P_REQUIRED, 0, 0, NULL},
	{"ends_at", PT_TIME, P_REQUIRED, 0, 0, NULL},
	PERMANENCE_TEXT_FIELDS,
	PERMANENCE_END};
static const struct param permanence_series_params[] = {
	{"weekday", PT_ENUM, P_REQUIRED, 0, 0, permanence_weekdays},
	{"nth", PT_INT, P_REQUIRED, -1, 5, NULL},
	{"start_time", PT_HHMM, P_REQUIRED, 0, 0, NULL},
	{"end_time", PT_HHMM, P_REQUIRED, 0, 0, NULL},
	{"from_date", PT_DATE, P_REQUIRED, 0, 0, NULL},
	{"count", PT_INT, P_REQUIRED, 1, 120, NULL},
	PERMANENCE_TEXT_FIELDS,
	PERMANENCE_END};
static const struct param permanence_list_params[] = {
	{"from", PT_TIME, 0, 0, 0, NULL},
	{"to", PT_TIME, 0, 0, 0, NULL},
	{"structure_id", PT_ID, 0, 0, 0, NULL},
	{"state", PT_ENUM, 0, 0, 0, permanence_states},
	LIST_PARAMS, PERMANENCE_END};
static const struct param permanence_id_params[] = {
	{"permanence_id", PT_ID, P_REQUIRED, 0, 0, NULL}, PERMANENCE_END};
static const struct param permanence_reserve_params[] = {
	{"permanence_id", PT_ID, P_REQUIRED, 0, 0, NULL},
	{"offer_id", PT_ID, P_REQUIRED, 0, 0, NULL},
	{"seats", PT_INT, P_REQUIRED, 1, 100000, NULL},
	PERMANENCE_END};
static const struct param permanence_release_params[] = {
	{"permanence_id", PT_ID, P_REQUIRED, 0, 0, NULL},
	{"offer_id", PT_ID, P_REQUIRED, 0, 0, NULL},
	{"seats", PT_INT, 0, 1, 100000, NULL},
	PERMANENCE_END};
static const struct param permanence_wish_params[] = {
	{"permanence_id", PT_ID, P_REQUIRED, 0, 0, NULL},
	{"beneficiary_id", PT_ID, P_REQUIRED, 0, 0, NULL},
	{"choices", PT_ID_ARRAY, P_REQUIRED, 1, 3, NULL},
	{"seats", PT_INT, P_REQUIRED, 1, 100, NULL},
	/* got nothing at the draw: wait for every choice, not the first only */
	{"waitlist_all", PT_BOOL, 0, 0, 0, NULL},
	PERMANENCE_END};
/* No seed: the server drew it at scheduling and published its SHA-256
 * (sql/api/60_permanences.sql); a `seed` is refused as an unknown param. */
static const struct param permanence_draw_params[] = {
	{"permanence_id", PT_ID, P_REQUIRED, 0, 0, NULL},
	PERMANENCE_END};
static const struct param permanence_claim_params[] = {
	{"permanence_id", PT_ID, P_REQUIRED, 0, 0, NULL},
	{"beneficiary_id", PT_ID, P_REQUIRED, 0, 0, NULL},
	{"offer_id", PT_ID, P_REQUIRED, 0, 0, NULL},
	{"seats", PT_INT, P_REQUIRED, 1, 100, NULL},
	{"idempotency_key", PT_STRING, 0, 1, 128, NULL},
	PERMANENCE_END};

#define PERMANENCE_METHODS \
	{"permanence.schedule", method_sql, REFERENTS, \
	    permanence_schedule_params, SQL("permanence_schedule"), 0}, \
	{"permanence.schedule_series", method_sql, REFERENTS, \
	    permanence_series_params, SQL("permanence_schedule_series"), 0}, \
	{"permanence.list", method_sql, REFERENTS, \
	    permanence_list_params, SQL("permanence_list"), 0}, \
	{"permanence.get", method_sql, REFERENTS, \
	    permanence_id_params, SQL("permanence_get"), 0}, \
	{"permanence.reserve_block", method_sql, REFERENTS, \
	    permanence_reserve_params, SQL("permanence_reserve_block"), 0}, \
	{"permanence.release_block", method_sql, REFERENTS, \
	    permanence_release_params, SQL("permanence_release_block"), 0}, \
	{"permanence.open", method_sql, REFERENTS, \
	    permanence_id_params, SQL("permanence_open"), 0}, \
	{"permanence.close", method_sql, REFERENTS, \
	    permanence_id_params, SQL("permanence_close"), 0}, \
	{"permanence.wish", method_sql, REFERENTS, \
	    permanence_wish_params, SQL("permanence_wish"), 0}, \
	{"permanence.draw", method_sql, REFERENTS, \
	    permanence_draw_params, SQL("permanence_draw"), 0}, \
	{"permanence.claim", method_sql, REFERENTS, \
	    permanence_claim_params, SQL("permanence_claim"), 0},

#endif
