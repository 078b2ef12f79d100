/*
 * Reports: report.activity for funders, offer.demand for partners
 * (docs/protocol.md, sql/api/70_reports.sql, docs/reports.md).
 *
 * Parameter schema and the method table row, included by methods.c after
 * its own schemas, where SQL() is defined; put REPORT_METHODS inside its
 * methods[] table. Every role may call it: the SQL function scopes the
 * numbers to the caller (an admin the network, a partner its offers, a
 * referent its structure) and refuses a range that ends before it starts.
 * offer.demand is a partner's (or the admin's): what was asked of its
 * offers, in numbers, never who asked.
 */
#ifndef METHODS_REPORT_H
#define METHODS_REPORT_H

static const char *const report_group_bys[] = {"month", "structure",
    "partner", "category", "territory", NULL};

static const struct param report_activity_params[] = {
	{"from", PT_TIME, P_REQUIRED, 0, 0, NULL},
	{"to", PT_TIME, P_REQUIRED, 0, 0, NULL},
	{"group_by", PT_ENUM, P_REQUIRED, 0, 0, report_group_bys},
	{0}};

static const struct param offer_demand_params[] = {
	{"offer_id", PT_ID, 0, 0, 0, NULL},
	{"from", PT_TIME, 0, 0, 0, NULL},
	{"to", PT_TIME, 0, 0, 0, NULL},
	{"partner_id", PT_ID, 0, 0, 0, NULL},
	{"limit", PT_INT, 0, 1, 500, NULL},
	{"cursor", PT_CURSOR, 0, 0, 0, NULL},
	{0}};

#define REPORT_METHODS \
	{"report.activity", method_sql, ROLES_USERS, report_activity_params, \
	    SQL("report_activity"), 0}, \
	{"offer.demand", method_sql, ROLE_ADMIN | ROLE_PARTNER, \
	    offer_demand_params, SQL("offer_demand"), 0},

#endif
