/*
 * One person followed by several structures: identity keys
 * (docs/privacy.md, docs/protocol.md, sql/api/20_directory.sql).
 *
 * Parameter schemas and the method table rows, included by methods.c
 * after its own schemas, where SQL() is defined; put IDENTITY_METHODS
 * inside its methods[] table.
 */
#ifndef METHODS_IDENTITY_H
#define METHODS_IDENTITY_H

#include "identity.h"

static const struct param identity_set_params[] = {
	{"beneficiary_id", PT_ID, P_REQUIRED, 0, 0, NULL},
	{"last_name", PT_STRING, P_REQUIRED, 1, 100, NULL},
	{"first_name", PT_STRING, P_REQUIRED, 1, 100, NULL},
	{"birth_date", PT_DATE, P_REQUIRED, 0, 0, NULL},
	{"consent", PT_BOOL, P_REQUIRED, 0, 0, NULL},
	{0}};

#define IDENTITY_METHODS \
	{"beneficiary.set_identity", identity_set, REFERENTS, \
	    identity_set_params, SQL("beneficiary_set_identity"), 0}, \
	{"beneficiary.clear_identity", method_sql, REFERENTS, \
	    beneficiary_id_params, SQL("beneficiary_clear_identity"), 0}, \
	{"identity.status", identity_status, ROLE_ADMIN, no_params, \
	    SQL("identity_status"), 0},

#endif
