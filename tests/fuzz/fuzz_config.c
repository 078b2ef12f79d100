/*
 * Harness: the configuration parser (daemon/config.c) on any file text,
 * through config_load_mem(), the very code config_load() runs on a file.
 * A refusal must come with a message; an accepted file must hold the
 * required keys and values within their limits.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *cfg;
	char err[512];

	err[0] = '\0';
	cfg = config_load_mem("fuzz.conf", (const char *)data, size, err,
	    sizeof err);
	if (cfg == NULL) {
		if (err[0] == '\0')
			abort();
		return 0;
	}
	if (cfg->db_conninfo == NULL || cfg->tls_cert == NULL ||
	    cfg->tls_key == NULL || cfg->nlisten < 1 ||
	    cfg->nlisten > CONFIG_MAX_LISTEN || cfg->workers < 1 ||
	    cfg->workers > 64 || cfg->policy.no_show_weight < 0 ||
	    cfg->policy.no_show_weight > 100)
		abort();
	/* A reload against itself changes nothing. */
	if (!config_reloadable(cfg, cfg, err, sizeof err))
		abort();
	config_free(cfg);
	return 0;
}
