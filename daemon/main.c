/* strapontind: the daemon that keeps the pool of donated seats. */
#include <getopt.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "conn.h"
#include "idkey.h"
#include "log.h"
#include "migrate.h"
#include "params.h"
#include "reloadsig.h"
#include "server.h"
#include "tls.h"
#include "version.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG SYSCONFDIR "/strapontin/strapontind.conf"
/* How long --reload waits for the daemon's answer: a reload reads a file
 * and a certificate, a matter of milliseconds. */
#define RELOAD_TIMEOUT 30

/* An operator reads these: French first, English second, as every
 * message of strapontind's own command line (docs/operations.md). */
static void
usage(FILE *f)
{
	fprintf(f,
	    "usage : strapontind [-c FICHIER] [--check-config | --migrate "
	    "[--dry-run] |\n"
	    "                    --add-admin COURRIEL]\n"
	    "        strapontind --reload PID\n"
	    "\n"
	    "  -c, --config FICHIER  configuration (par défaut %s)\n"
	    "      --check-config    vérifie la configuration, le certificat "
	    "et la clé, puis s'arrête\n"
	    "      --migrate         applique les migrations de la base en "
	    "attente, puis s'arrête\n"
	    "      --dry-run         avec --migrate : dit ce qui serait "
	    "appliqué, sans rien changer\n"
	    "      --add-admin COURRIEL  crée ou réinitialise un "
	    "administrateur ; le mot de passe\n"
	    "                        est lu sur l'entrée standard (une ligne), "
	    "puis s'arrête\n"
	    "      --reload PID      fait recharger le démon PID (SIGHUP) ; "
	    "sort avec 0 s'il l'a\n"
	    "                        fait, 1 s'il a gardé sa configuration, 2 "
	    "sans réponse\n"
	    "  -h, --help            cette aide\n"
	    "  -V, --version         affiche la version\n"
	    "\n"
	    "Sans action, sert au premier plan et journalise sur la sortie "
	    "d'erreur.\n"
	    "SIGHUP recharge la configuration et le certificat ; SIGTERM "
	    "vide puis arrête.\n"
	    "\n"
	    "usage: strapontind [-c FILE] [--check-config | --migrate "
	    "[--dry-run] |\n"
	    "                   --add-admin EMAIL]\n"
	    "       strapontind --reload PID\n"
	    "\n"
	    "  -c, --config FILE     configuration (default %s)\n"
	    "      --check-config    check the configuration, certificate and "
	    "key, then exit\n"
	    "      --migrate         apply pending database migrations, then "
	    "exit\n"
	    "      --dry-run         with --migrate: say what it would apply, "
	    "change nothing\n"
	    "      --add-admin EMAIL create or reset an administrator; the "
	    "password is read\n"
	    "                        from standard input (one line), then "
	    "exit\n"
	    "      --reload PID      make the daemon PID reload (SIGHUP) and "
	    "exit 0 if it\n"
	    "                        did, 1 if it kept its configuration, 2 "
	    "without answer\n"
	    "  -h, --help            this help\n"
	    "  -V, --version         print the version\n"
	    "\n"
	    "Without an action flag, serves in the foreground and logs to "
	    "stderr.\n"
	    "SIGHUP reloads the configuration and certificate; SIGTERM "
	    "drains and exits.\n", DEFAULT_CONFIG, DEFAULT_CONFIG);
}

static int
add_admin(const struct config *cfg, const char *email)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	bool ok;

	if (!params_is_email(email)) {
		fprintf(stderr, "strapontind: %s n'est pas une adresse "
		    "électronique / is not an e-mail address\n", email);
		return 1;
	}
	if ((n = getline(&line, &cap, stdin)) < 0) {
		fprintf(stderr, "strapontind: aucun mot de passe sur l'entrée "
		    "standard / no password on standard input\n");
		free(line);
		return 1;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	if (n < 8) {
		fprintf(stderr, "strapontind: le mot de passe doit avoir au "
		    "moins 8 caractères / the password must have at least 8 "
		    "characters\n");
		OPENSSL_cleanse(line, cap);
		free(line);
		return 1;
	}
	ok = migrate_add_admin(cfg->db_migrate_conninfo, email, line);
	OPENSSL_cleanse(line, cap);
	free(line);
	if (ok)
		log_info("administrator %s is ready", email);
	return ok ? 0 : 1;
}

/* systemd's ExecReload (docs/operations.md, "systemd"): the exit status
 * is the reload's outcome, which `systemctl reload` reports. */
static int
reload(const char *pid_arg)
{
	long long pid;
	char err[256];
	int rc;

	if (!parse_ll(pid_arg, 1, INT32_MAX, &pid)) {
		fprintf(stderr, "%sstrapontind: --reload : %s n'est pas un "
		    "numéro de processus / is not a process id\n",
		    log_prefix(LL_ERROR), pid_arg);
		return 2;
	}
	rc = reloadsig_request((pid_t)pid, RELOAD_TIMEOUT, err, sizeof err);
	if (rc == 0)
		fprintf(stderr, "%sstrapontind: le processus %lld a rechargé sa "
		    "configuration / process %lld reloaded its configuration\n",
		    log_prefix(LL_INFO), pid, pid);
	else if (rc == 1)
		fprintf(stderr, "%sstrapontind: le processus %lld n'a pas pu "
		    "recharger et garde sa configuration (son journal dit "
		    "pourquoi) / process %lld could not reload and kept its "
		    "running configuration (its log says why)\n",
		    log_prefix(LL_ERROR), pid, pid);
	else
		fprintf(stderr, "%sstrapontind: --reload: %s\n",
		    log_prefix(LL_ERROR), err);
	return rc;
}

int
main(int argc, char **argv)
{
	enum { OPT_CHECK = 256, OPT_MIGRATE, OPT_ADD_ADMIN, OPT_RELOAD,
		OPT_DRY_RUN };
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check-config", no_argument, NULL, OPT_CHECK},
		{"migrate", no_argument, NULL, OPT_MIGRATE},
		{"add-admin", required_argument, NULL, OPT_ADD_ADMIN},
		{"reload", required_argument, NULL, OPT_RELOAD},
		{"dry-run", no_argument, NULL, OPT_DRY_RUN},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *path = DEFAULT_CONFIG, *admin = NULL, *reload_pid = NULL;
	struct config *cfg;
	char err[512];
	int ch, action = 0, rc;
	bool dry_run = false;
	enum log_level level = LL_INFO;

	while ((ch = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case OPT_CHECK:
		case OPT_MIGRATE:
			action = ch;
			break;
		case OPT_ADD_ADMIN:
			action = ch;
			admin = optarg;
			break;
		case OPT_RELOAD:
			action = ch;
			reload_pid = optarg;
			break;
		case OPT_DRY_RUN:
			dry_run = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("%s %s (protocol %d, schema %d)\n",
			    STRAPONTIN_NAME, STRAPONTIN_VERSION,
			    STRAPONTIN_PROTOCOL, migrate_latest());
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || (dry_run && action != OPT_MIGRATE)) {
		usage(stderr);
		return 2;
	}
	/* A client that vanishes must not kill us; signals otherwise go
	 * through the event loop (server.c). */
	signal(SIGPIPE, SIG_IGN);
	log_detect_journal();
	log_route_libevent();
	if (action == OPT_RELOAD)
		return reload(reload_pid);

	if ((cfg = config_load(path, err, sizeof err)) == NULL) {
		fprintf(stderr, "%sstrapontind: %s\n", log_prefix(LL_ERROR),
		    err);
		return 1;
	}
	log_parse_level(cfg->log_level, &level);
	log_configure(level, strcmp(cfg->log_format, "json") == 0);

	switch (action) {
	case OPT_CHECK: {
		SSL_CTX *ctx = tls_server_ctx(cfg, err, sizeof err);

		if (ctx == NULL) {
			fprintf(stderr, "%sstrapontind: %s\n",
			    log_prefix(LL_ERROR), err);
			config_free(cfg);
			return 1;
		}
		SSL_CTX_free(ctx);
		if (!idkey_configure(cfg, err, sizeof err)) {
			fprintf(stderr, "%sstrapontind: %s\n",
			    log_prefix(LL_ERROR), err);
			config_free(cfg);
			return 1;
		}
		idkey_reset();
		printf("%s : configuration correcte / configuration OK\n",
		    path);
		config_free(cfg);
		return 0;
	}
	case OPT_MIGRATE:
		if (dry_run)
			rc = migrate_dry_run(cfg->db_migrate_conninfo, stdout) ?
			    0 : 1;
		else
			rc = migrate_apply(cfg->db_migrate_conninfo) ? 0 : 1;
		config_free(cfg);
		return rc;
	case OPT_ADD_ADMIN:
		rc = add_admin(cfg, admin);
		config_free(cfg);
		return rc;
	}
	log_info("%s %s starting", STRAPONTIN_NAME, STRAPONTIN_VERSION);
	/* A descriptor per connection and per pool connection, and some for
	 * listeners, logs and the like. */
	conn_raise_fd_limit((unsigned long long)(cfg->max_connections +
	    cfg->db_pool_size + 64));
	return server_run(cfg);
}
