/*
 * Reports for funders: report.activity (docs/protocol.md,
 * sql/api/70_reports.sql, docs/reports.md).
 *
 * Parameter schema and the method table row, included by methods.c after
 * its own schemas, where SQL() is defined; put REPORT_METHODS inside its
 * methods[] table. Every role may call it: the SQL function scopes the
 * numbers to the caller (an admin the network, a partner its offers, a
 * referent its structure) and refuses a range that ends before it starts.
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

#define REPORT_METHODS \
	{"report.activity", method_sql, ROLES_USERS, report_activity_params, \
	    SQL("report_activity"), 0},

#endif
