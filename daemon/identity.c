#include "identity.h"

#include <jansson.h>
#include <string.h>

#include "idkey.h"
#include "rpc.h"
#include "sqlcall.h"

static const char *
param_str(struct request *req, const char *name)
{
	return json_string_value(json_object_get(req->params, name));
}

void
identity_set(struct request *req)
{
	static const char *const names[] = {"last_name", "first_name"};
	char key[IDKEY_HEX], id[IDKEY_ID_HEX];
	char prev_key[IDKEY_HEX], prev_id[IDKEY_ID_HEX];
	char norm[512];
	const char *why = NULL;
	size_t i;

	if (!json_is_true(json_object_get(req->params, "consent"))) {
		rpc_error(req, "invalid_params", "consent", NULL,
		    "consent must be true: the person must agree to this key");
		return;
	}
	for (i = 0; i < 2; i++)
		if (!idkey_normalise(param_str(req, names[i]), norm,
		    sizeof norm)) {
			rpc_error(req, "invalid_params", names[i], NULL,
			    "%s must hold at least one letter or digit",
			    names[i]);
			return;
		}
	if (!idkey_person(param_str(req, "last_name"),
	    param_str(req, "first_name"), param_str(req, "birth_date"),
	    key, id, prev_key, prev_id, &why)) {
		if (strcmp(why, "secret") == 0)
			rpc_error(req, "forbidden", NULL, NULL, "Identity keys "
			    "are not enabled on this server "
			    "(privacy.identity_secret_file).");
		else
			rpc_internal(req, "identity key not made");
		return;
	}
	/* From here on, SQL sees the key and nothing it was made from. */
	json_object_del(req->params, "last_name");
	json_object_del(req->params, "first_name");
	json_object_del(req->params, "birth_date");
	json_object_set_new(req->params, "identity_key", json_string(key));
	json_object_set_new(req->params, "identity_secret_id", json_string(id));
	if (prev_key[0] != '\0') {
		json_object_set_new(req->params, "previous_key",
		    json_string(prev_key));
		json_object_set_new(req->params, "previous_secret_id",
		    json_string(prev_id));
	}
	sqlcall(req, NULL);
}

void
identity_status(struct request *req)
{
	char id[IDKEY_ID_HEX], prev_id[IDKEY_ID_HEX];

	idkey_ids(id, prev_id);
	json_object_set_new(req->params, "current_secret_id",
	    id[0] != '\0' ? json_string(id) : json_null());
	json_object_set_new(req->params, "previous_secret_id",
	    prev_id[0] != '\0' ? json_string(prev_id) : json_null());
	sqlcall(req, NULL);
}
