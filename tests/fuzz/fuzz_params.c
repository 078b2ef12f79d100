/*
 * Harness: the params validator (daemon/params.c). The input is what a
 * client could put in "params": it is parsed as the dispatcher parses a
 * request (duplicate keys refused), then checked against each of a few
 * specs shaped like those of daemon/methods.c, which together use every
 * PT_* type, flag and limit form. A refusal must name a field and say why
 * in a bounded message.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "params.h"

static const char *const categories[] = {"show", "concert", "cinema",
    "heritage", "museum", "sport", "festival", "workshop", "other", NULL};
static const char *const deliveries[] = {"guest_list", "e_ticket", "pickup",
    NULL};
static const char *const topics[] = {"offer.published", "offer.cancelled",
    "offer.seats_changed", "booking.created", "booking.cancelled",
    "waitlist.offered", NULL};
static const char *const weekdays[] = {"monday", "tuesday", "wednesday",
    "thursday", "friday", "saturday", "sunday", NULL};

static const struct param offer_publish[] = {
	{"title", PT_STRING, P_REQUIRED, 1, 200, NULL},
	{"category", PT_ENUM, P_REQUIRED, 0, 0, categories},
	{"venue", PT_STRING, P_REQUIRED, 1, 200, NULL},
	{"city", PT_STRING, P_REQUIRED, 1, 200, NULL},
	{"starts_at", PT_TIME, P_REQUIRED, 0, 0, NULL},
	{"ends_at", PT_TIME, P_NULLABLE, 0, 0, NULL},
	{"max_per_booking", PT_INT, 0, 1, 100, NULL},
	{"booking_deadline", PT_TIME, 0, 0, 0, NULL},
	{"delivery", PT_ENUM, 0, 0, 0, deliveries},
	{"description", PT_TEXT, P_NULLABLE, 0, 4000, NULL},
	{"accessibility", PT_TEXT, P_NULLABLE, 0, 1000, NULL},
	{"seats", PT_INT, P_REQUIRED, 1, 100000, NULL},
	{"partner_id", PT_ID, 0, 0, 0, NULL},
	{0}};
static const struct param user_create[] = {
	{"email", PT_EMAIL, P_REQUIRED, 0, 0, NULL},
	{"display_name", PT_STRING, P_REQUIRED, 1, 200, NULL},
	{"password", PT_STRING, P_REQUIRED, 8, 1024, NULL},
	{"structure_id", PT_ID, 0, 0, 0, NULL},
	{0}};
static const struct param beneficiary_update[] = {
	{"beneficiary_id", PT_ID, P_REQUIRED, 0, 0, NULL},
	{"first_name", PT_STRING, 0, 1, 100, NULL},
	{"birth_year", PT_INT, P_NULLABLE, 1900, 2100, NULL},
	{"postal_code", PT_STRING, P_NULLABLE, 2, 10, NULL},
	{"consent", PT_BOOL, 0, 0, 0, NULL},
	{0}};
static const struct param list[] = {
	{"from", PT_TIME, 0, 0, 0, NULL},
	{"available_only", PT_BOOL, 0, 0, 0, NULL},
	{"limit", PT_INT, 0, 1, 500, NULL},
	{"cursor", PT_CURSOR, 0, 0, 0, NULL},
	{0}};
static const struct param permanence_series[] = {
	{"weekday", PT_ENUM, P_REQUIRED, 0, 0, weekdays},
	{"nth", PT_INT, P_REQUIRED, -1, 5, NULL},
	{"start_time", PT_HHMM, P_REQUIRED, 0, 0, NULL},
	{"end_time", PT_HHMM, P_REQUIRED, 0, 0, NULL},
	{"from_date", PT_DATE, P_REQUIRED, 0, 0, NULL},
	{"count", PT_INT, P_REQUIRED, 1, 120, NULL},
	{0}};
static const struct param permanence_request[] = {
	{"permanence_id", PT_ID, P_REQUIRED, 0, 0, NULL},
	{"choices", PT_ID_ARRAY, P_REQUIRED, 1, 3, NULL},
	{"seats", PT_INT, P_REQUIRED, 1, 100, NULL},
	{0}};
static const struct param subscribe[] = {
	{"topics", PT_ENUM_ARRAY, P_REQUIRED, 0, 6, topics},
	{0}};
/* No method takes a PT_NUMBER yet; the validator has it all the same. */
static const struct param weighted[] = {
	{"weight", PT_NUMBER, P_REQUIRED | P_NULLABLE, 0, 100, NULL},
	{"limit", PT_INT, 0, -5, 5, NULL},
	{0}};

static const struct param *const specs[] = {offer_publish, user_create,
    beneficiary_update, list, permanence_series, permanence_request,
    subscribe, weighted};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *field;
	char msg[256];
	json_error_t jerr;
	json_t *params;
	size_t i;

	params = json_loadb((const char *)data, size,
	    JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (params == NULL)
		return 0;
	/* The dispatcher refuses params that are not an object itself. */
	if (json_is_object(params)) {
		for (i = 0; i < sizeof specs / sizeof specs[0]; i++) {
			memset(msg, 'x', sizeof msg);
			field = "unset";
			if (params_validate(specs[i], params, &field, msg,
			    sizeof msg)) {
				if (field != NULL)
					abort();
				continue;
			}
			/* A refusal says which field, in a string. */
			if (field == NULL || memchr(msg, '\0', sizeof msg) ==
			    NULL || msg[0] == '\0')
				abort();
		}
	}
	json_decref(params);
	return 0;
}
