/*
 * The command table: one row per command. A method of the daemon becomes a
 * command by adding one line here; its params are written in the small
 * language of cli_params.c, which drives the --flag parser, --help, the
 * bash completion and the test that compares this table with the
 * daemon's (tests/integration/itest_cli.c).
 *
 * Spec language, one word per param, separated by spaces:
 *	name[:type][!|?][*]
 * type is str (the default, and id for names ending in _id), text, int,
 * id, bool, email, time, date, hhmm, ids, strs, cursor, or the name of an
 * enumeration below; "!" marks a required param, "?" one that accepts
 * null ("--field null" clears it), "*" a secret that is never taken from
 * the command line (prompted for, or read from standard input).
 */
#include <string.h>

#include "cli.h"

static const char *const partner_kinds[] = {"theatre", "cinema", "museum",
    "heritage", "concert_hall", "festival", "sport", "library", "other",
    NULL};
static const char *const structure_kinds[] = {"mds", "centre_social",
    "ccas", "association", "housing", "other", NULL};
static const char *const roles[] = {"admin", "partner", "referent", NULL};
static const char *const categories[] = {"show", "concert", "cinema",
    "heritage", "museum", "sport", "festival", "workshop", "other", NULL};
static const char *const deliveries[] = {"guest_list", "e_ticket", "pickup",
    NULL};
static const char *const group_codes[] = {"group", "person", NULL};
static const char *const booking_statuses[] = {"confirmed", "cancelled",
    "cancelled_by_partner", "attended", "no_show", "withdrawn_late", NULL};
static const char *const withdraw_reasons[] = {"illness", "transport",
    "family", "other", NULL};
static const char *const waitlist_statuses[] = {"waiting", "offered",
    "accepted", "expired", "left", "cancelled", NULL};
static const char *const offer_scopes[] = {"this", "following", NULL};
static const char *const weekdays[] = {"monday", "tuesday", "wednesday",
    "thursday", "friday", "saturday", "sunday", NULL};
static const char *const permanence_states[] = {"scheduled", "open",
    "drawn", "closed", NULL};
static const char *const group_bys[] = {"month", "structure", "partner",
    "category", "territory", NULL};
static const char *const event_topics[] = {"offer.published",
    "offer.cancelled", "offer.seats_changed", "booking.created",
    "booking.cancelled", "waitlist.offered", "offer.opened", NULL};
static const char *const mail_kinds[] = {"referent_digest",
    "offer_cancelled", "offer_moved", "hold_expiring", "guest_list",
    "attendance_to_close", NULL};

static const struct cli_enum enums[] = {
    {"partner_kind", partner_kinds},
    {"structure_kind", structure_kinds},
    {"role", roles},
    {"category", categories},
    {"delivery", deliveries},
    {"group_codes", group_codes},
    {"booking_status", booking_statuses},
    {"withdraw_reason", withdraw_reasons},
    {"waitlist_status", waitlist_statuses},
    {"offer_scope", offer_scopes},
    {"weekday", weekdays},
    {"permanence_state", permanence_states},
    {"group_by", group_bys},
    {"event_topic", event_topics},
    {"mail_kind", mail_kinds},
    {NULL, NULL},
};

const char *const *
cli_enum_values(const char *name)
{
	const struct cli_enum *e;

	for (e = enums; e->name != NULL; e++)
		if (strcmp(e->name, name) == 0)
			return e->values;
	return NULL;
}

#define LIST " limit:int cursor:cursor"
/* R is "!" where the fields are required (publish), "" where not. */
/* What an offer is, apart from when: publish and publish-series. */
#define OFFER_WHAT(R)                                                          \
	" title" R " category:category" R " venue" R " city" R                 \
	" max_per_booking:int delivery:delivery description:text?"             \
	" accessibility:text? address? group_codes:group_codes"                \
	" target_structure_ids:ids? target_territories:strs?"                  \
	" opens_to_all_at:time? opens_to_all_hours:int?"
#define OFFER_FIELDS(R)                                                        \
	OFFER_WHAT(R) " starts_at:time" R " ends_at:time?"                     \
	" booking_deadline:time"
/* The rule of a series, and of its times when editing the following. */
#define SERIES_RULE                                                            \
	" weekday:weekday! nth:int start_time:hhmm! end_time:hhmm"             \
	" from_date:date! count:int until_date:date deadline_hours:int"
#define PERSON_FIELDS " birth_year:int? household_size:int? postal_code?"
#define PLACE " title location notes:text structure_id"

/* clang-format off */
const struct cli_command cli_commands[] = {
/* noun verb method positional params view flags fn help */
{"ping", NULL, "system.ping", NULL, "", NULL, CMD_ANON, cli_cmd_ping, N_("check that the server answers")},
{"version", NULL, "system.version", NULL, "", NULL, CMD_ANON, cli_cmd_version, N_("server and client versions")},
{"health", NULL, "system.health", NULL, "", NULL, CMD_ANON, cli_cmd_health, N_("database state and counters")},
{"login", NULL, "auth.login", "email", "email:email! password*!", NULL, CMD_ANON | CMD_SECRET, cli_cmd_login, N_("log in (password prompted) and keep the session")},
{"logout", NULL, "auth.logout", NULL, "", NULL, 0, cli_cmd_logout, N_("end the session and forget it")},
{"whoami", NULL, "auth.whoami", NULL, "", &view_whoami, 0, cli_cmd_whoami, N_("who the saved session belongs to")},
{"call", NULL, NULL, NULL, "", NULL, 0, cli_cmd_call, N_("call any method: call METHOD '{json}' or --field value")},
{"system", "ping", "system.ping", NULL, "", NULL, CMD_ANON, cli_cmd_ping, N_("check that the server answers")},
{"system", "version", "system.version", NULL, "", NULL, CMD_ANON, cli_cmd_version, N_("server and client versions")},
{"system", "health", "system.health", NULL, "", NULL, CMD_ANON, cli_cmd_health, N_("database state and counters")},
{"auth", "login", "auth.login", "email", "email:email! password*!", NULL, CMD_ANON | CMD_SECRET, cli_cmd_login, N_("log in (password prompted) and keep the session")},
{"auth", "logout", "auth.logout", NULL, "", NULL, 0, cli_cmd_logout, N_("end the session and forget it")},
{"auth", "whoami", "auth.whoami", NULL, "", &view_whoami, 0, cli_cmd_whoami, N_("who the saved session belongs to")},
{"auth", "resume", "auth.resume", NULL, "token*!", &view_whoami, CMD_ANON | CMD_SECRET, NULL, N_("check a token (asked for): whose it is")},
{"auth", "change-password", "auth.change_password", NULL, "old_password*! new_password*!", NULL, CMD_SECRET, cli_cmd_password, N_("change your password (prompted)")},
{"auth", "mail-preferences", "auth.set_mail_preferences", NULL, "mail_off:mail_kind[]", &view_mail_preferences, 0, NULL, N_("the e-mail notices you receive; --mail-off turns some off (none: all back on)")},
{"partner", "create", "partner.create", NULL, "name! kind:partner_kind! city! contact_email:email", &view_partner, 0, NULL, N_("add a cultural partner")},
{"partner", "list", "partner.list", NULL, LIST, &view_partners, CMD_LIST, NULL, N_("list the partners")},
{"structure", "create", "structure.create", NULL, "name! kind:structure_kind! territory! city! timezone", &view_structure, 0, NULL, N_("add a social structure")},
{"structure", "list", "structure.list", NULL, LIST, &view_structures, CMD_LIST, NULL, N_("list the structures")},
{"user", "create", "user.create", "email", "email:email! display_name! role:role! password*! partner_id structure_id", &view_user, CMD_SECRET, NULL, N_("add an account (password prompted)")},
{"user", "list", "user.list", NULL, "role:role" LIST, &view_users, CMD_LIST, NULL, N_("list the accounts")},
{"user", "disable", "user.disable", "user_id", "user_id!", &view_user, 0, NULL, N_("disable an account and end its sessions")},
{"offer", "publish", "offer.publish", NULL, OFFER_FIELDS("!") " seats:int! partner_id", &view_offer, 0, NULL, N_("publish an offer of donated seats")},
{"offer", "publish-series", "offer.publish_series", NULL, OFFER_WHAT("!") " seats:int! partner_id" SERIES_RULE, &view_offer_series, CMD_LIST, NULL, N_("publish an offer every week, or every nth weekday of the month")},
{"offer", "update", "offer.update", "offer_id", "offer_id!" OFFER_FIELDS("") " scope:offer_scope start_time:hhmm end_time:hhmm? deadline_hours:int", &view_offer, 0, NULL, N_("change an offer (not its seats); --scope following: and the later ones of its series")},
{"offer", "set-seats", "offer.set_seats", "offer_id", "offer_id! seats:int!", &view_offer, 0, NULL, N_("change the number of seats")},
{"offer", "cancel", "offer.cancel", "offer_id", "offer_id! reason! scope:offer_scope", &view_offer, 0, NULL, N_("cancel an offer and its bookings; --scope following: and the later ones of its series")},
{"offer", "list", "offer.list", NULL, "from:time to:time category:category city partner_id available_only:bool" LIST, &view_offers, CMD_LIST, NULL, N_("list offers")},
{"offer", "get", "offer.get", "offer_id", "offer_id!", &view_offer, 0, NULL, N_("show one offer")},
{"offer", "guest-list", "offer.guest_list", "offer_id", "offer_id!", &view_guest_list, CMD_LIST, NULL, N_("who is expected at the door")},
{"offer", "close-attendance", "offer.close_attendance", "offer_id", "offer_id! arrived_late:ids", &view_attendance, 0, NULL, N_("mark who did not come as no-show")},
{"beneficiary", "create", "beneficiary.create", NULL, "first_name! last_name!" PERSON_FIELDS " consent:bool! structure_id email:email reminders:bool", &view_beneficiary, 0, NULL, N_("add a person (with their consent)")},
{"beneficiary", "list", "beneficiary.list", NULL, "query structure_id" LIST, &view_beneficiaries, CMD_LIST, NULL, N_("list or search the people followed")},
{"beneficiary", "get", "beneficiary.get", "beneficiary_id", "beneficiary_id!", &view_beneficiary, 0, NULL, N_("show a person, outings and upcoming bookings")},
{"beneficiary", "update", "beneficiary.update", "beneficiary_id", "beneficiary_id! first_name last_name" PERSON_FIELDS " email:email? reminders:bool", &view_beneficiary, 0, NULL, N_("change a person's details")},
{"beneficiary", "erase", "beneficiary.erase", "beneficiary_id", "beneficiary_id!", NULL, 0, NULL, N_("erase a person's data for good")},
{"beneficiary", "export", "beneficiary.export", "beneficiary_id", "beneficiary_id!", NULL, 0, NULL, N_("everything held about a person")},
{"beneficiary", "record", "beneficiary.record", "beneficiary_id", "beneficiary_id! at:time", &view_record, CMD_LIST, NULL, N_("a person's outings, no-shows and late withdrawals, and the draw's score")},
{"beneficiary", "set-identity", "beneficiary.set_identity", "beneficiary_id", "beneficiary_id! last_name! first_name! birth_date:date! consent:bool!", &view_beneficiary, 0, NULL, N_("count a person once across structures (identity key, with their consent)")},
{"beneficiary", "clear-identity", "beneficiary.clear_identity", "beneficiary_id", "beneficiary_id!", &view_beneficiary, 0, NULL, N_("forget a person's identity key")},
{"identity", "status", "identity.status", NULL, "", NULL, 0, NULL, N_("identity keys under each secret, for a rotation")},
{"booking", "create", "booking.create", NULL, "offer_id! beneficiary_id! seats:int! idempotency_key", &view_booking, 0, NULL, N_("book seats for a person")},
{"booking", "cancel", "booking.cancel", "booking_id", "booking_id!", &view_booking, 0, NULL, N_("cancel a booking, freeing its seats")},
{"booking", "withdraw", "booking.withdraw", "booking_id", "booking_id! reason:withdraw_reason!", &view_booking, 0, NULL, N_("give the seats back after the deadline, before the show")},
{"booking", "list", "booking.list", NULL, "beneficiary_id offer_id status:booking_status from:time to:time" LIST, &view_bookings, CMD_LIST, NULL, N_("list bookings")},
{"booking", "get", "booking.get", "booking_id", "booking_id!", &view_booking, 0, NULL, N_("show one booking")},
{"booking", "create-group", "booking.create_group", NULL, "offer_id! beneficiary_ids:ids! seats:ids staff_seats:int idempotency_key", &view_group, 0, NULL, N_("book a group outing: people, companions, staff")},
{"booking", "get-group", "booking.get_group", "group_id", "group_id!", &view_group, 0, NULL, N_("show a group outing and its people")},
{"booking", "cancel-group", "booking.cancel_group", "group_id", "group_id!", &view_group, 0, NULL, N_("cancel a whole group outing")},
{"waitlist", "join", "waitlist.join", NULL, "offer_id! beneficiary_id! seats:int!", &view_waitlist, 0, NULL, N_("wait for seats of a full offer")},
{"waitlist", "leave", "waitlist.leave", "entry_id", "entry_id!", &view_waitlist, 0, NULL, N_("leave a waiting list")},
{"waitlist", "list", "waitlist.list", NULL, "offer_id beneficiary_id status:waitlist_status" LIST, &view_waitlists, CMD_LIST, NULL, N_("list waiting-list entries")},
{"waitlist", "accept", "waitlist.accept", "entry_id", "entry_id!", &view_booking, 0, NULL, N_("take the seats offered to an entry")},
{"ticket", "check-in", "ticket.check_in", "code", "code:ticket! offer_id", &view_checkin, 0, NULL, N_("check a ticket code in at the door")},
{"voucher", "get", "voucher.get", "code", "code!", NULL, CMD_ANON, NULL, N_("what the holder of a ticket code sees (no login)")},
{"audit", "list", "audit.list", NULL, "from:time to:time user_id" LIST, &view_audit, CMD_LIST, NULL, N_("who changed what, when")},
{"permanence", "schedule", "permanence.schedule", NULL, "starts_at:time! ends_at:time!" PLACE, &view_permanence, 0, NULL, N_("schedule one drop-in")},
{"permanence", "schedule-series", "permanence.schedule_series", NULL, "weekday:weekday! nth:int! start_time:hhmm! end_time:hhmm! from_date:date! count:int!" PLACE, &view_permanences, CMD_LIST, NULL, N_("schedule a monthly series (e.g. every 2nd tuesday)")},
{"permanence", "list", "permanence.list", NULL, "from:time to:time structure_id state:permanence_state" LIST, &view_permanences, CMD_LIST, NULL, N_("list drop-ins")},
{"permanence", "get", "permanence.get", "permanence_id", "permanence_id!", &view_permanence, 0, NULL, N_("show a drop-in: blocks, wishes, draw")},
{"permanence", "reserve-block", "permanence.reserve_block", "permanence_id", "permanence_id! offer_id! seats:int!", &view_permanence, 0, NULL, N_("set seats of an offer aside for a drop-in")},
{"permanence", "release-block", "permanence.release_block", "permanence_id", "permanence_id! offer_id! seats:int", &view_permanence, 0, NULL, N_("give set-aside seats back")},
{"permanence", "open", "permanence.open", "permanence_id", "permanence_id!", &view_permanence, 0, NULL, N_("open a drop-in: wishes and claims")},
{"permanence", "close", "permanence.close", "permanence_id", "permanence_id!", &view_permanence, 0, NULL, N_("close a drop-in, unclaimed seats back")},
{"permanence", "wish", "permanence.wish", "permanence_id", "permanence_id! beneficiary_id! choices:ids! seats:int! waitlist_all:bool", NULL, 0, NULL, N_("record a person's 1 to 3 choices")},
{"permanence", "draw", "permanence.draw", "permanence_id", "permanence_id!", &view_draw, CMD_LIST, NULL, N_("share the seats out fairly")},
{"permanence", "public-list", "permanence.public_list", "structure_id", "structure_id!", NULL, CMD_ANON, NULL, N_("a structure's upcoming drop-ins, as the public page shows them (no login)")},
{"permanence", "claim", "permanence.claim", "permanence_id", "permanence_id! beneficiary_id! offer_id! seats:int! idempotency_key", &view_booking, 0, NULL, N_("book at the desk, first come first served")},
{"report", "activity", "report.activity", NULL, "from:time! to:time! group_by:group_by!", &view_report, CMD_LIST, NULL, N_("seats offered, booked, used")},
{"offer", "demand", "offer.demand", "offer_id", "offer_id from:time to:time partner_id" LIST, &view_demand, CMD_LIST, NULL, N_("what was asked of your offers, in numbers")},
{"events", "subscribe", "events.subscribe", NULL, "topics:event_topic[]!", NULL, 0, cli_cmd_events, N_("print live events until interrupted")},
};
/* clang-format on */
const size_t cli_ncommands = sizeof cli_commands / sizeof cli_commands[0];

static const struct {
	const char *noun;
	const char *help;
} nouns[] = {
    {"system", N_("is the server there")},
    {"auth", N_("sessions and passwords")},
    {"partner", N_("cultural partners, who donate seats (admin)")},
    {"structure", N_("social structures, whose referents book (admin)")},
    {"user", N_("accounts (admin)")},
    {"offer", N_("dated events with donated seats")},
    {"beneficiary", N_("the people a structure follows")},
    {"booking", N_("seats held for a person")},
    {"waitlist", N_("waiting for seats of full offers")},
    {"ticket", N_("check-in at the door")},
    {"voucher", N_("a ticket as its holder sees it (no login)")},
    {"permanence", N_("drop-ins: blocks of seats, wishes, the draw")},
    {"report", N_("what was given and used")},
    {"audit", N_("the log of changes (admin)")},
    {"identity", N_("identity keys of people followed by several structures (admin)")},
    {"events", N_("live news of offers, bookings, waiting lists")},
};

const char *const *
cli_nouns(void)
{
	static const char *list[sizeof nouns / sizeof nouns[0] + 1];
	size_t i;

	for (i = 0; i < sizeof nouns / sizeof nouns[0]; i++)
		list[i] = nouns[i].noun;
	list[i] = NULL;
	return list;
}

const char *
cli_noun_help(const char *noun)
{
	size_t i;

	for (i = 0; i < sizeof nouns / sizeof nouns[0]; i++)
		if (strcmp(nouns[i].noun, noun) == 0)
			return nouns[i].help;
	return NULL;
}

bool
cli_noun_exists(const char *noun)
{
	size_t i;

	for (i = 0; i < cli_ncommands; i++)
		if (strcmp(cli_commands[i].noun, noun) == 0 &&
		    cli_commands[i].verb != NULL)
			return true;
	return false;
}

/* verb NULL finds a one-word command. */
const struct cli_command *
cli_find(const char *noun, const char *verb)
{
	const struct cli_command *c;
	size_t i;

	for (i = 0; i < cli_ncommands; i++) {
		c = &cli_commands[i];
		if (strcmp(c->noun, noun) != 0)
			continue;
		if (verb == NULL ? c->verb == NULL
				 : c->verb != NULL && strcmp(c->verb, verb) == 0)
			return c;
	}
	return NULL;
}
