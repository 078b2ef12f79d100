/*
 * Smoke test: the daemon starts on a fresh database, answers a ping, lets
 * the admin log in and see who it is, and stops cleanly on SIGTERM.
 */
#include "harness.h"

#include <string.h>

static void
test_smoke(void **state)
{
	struct h_daemon *d;
	struct st_client *c;
	json_t *res, *user;

	(void)state;
	d = h_daemon_start("smoke", NULL);

	c = h_connect(d);
	res = h_call_ok(c, "system.ping", json_object());
	assert_true(json_is_true(json_object_get(res, "pong")));
	assert_non_null(json_string_value(json_object_get(res, "time")));
	json_decref(res);
	st_close(c);

	c = h_login_admin(d);
	res = h_call_ok(c, "auth.whoami", json_object());
	user = json_object_get(res, "user");
	assert_non_null(user);
	assert_string_equal(json_string_value(json_object_get(user, "email")),
			    H_ADMIN_EMAIL);
	assert_string_equal(json_string_value(json_object_get(user, "role")),
			    "admin");
	json_decref(res);
	st_close(c);

	assert_int_equal(h_daemon_stop(d), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_smoke),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
