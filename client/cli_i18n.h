/*
 * strapontin, the command-line client: its language and its clock.
 *
 * Messages a person reads are written in English in the code and go
 * through gettext (_()); the French catalogue, po/fr.po, compiled by CMake
 * into locale/fr/LC_MESSAGES/strapontin.mo, is the default (docs/cli.md,
 * "Language and time"). English is spoken only when asked for:
 * STRAPONTIN_LANG=en, or a locale (LC_ALL, LC_MESSAGES, LANG, the first
 * set) whose name starts with "en". Machine output (--json, --csv) is
 * never translated.
 *
 * Times are shown in TZ, Europe/Paris when TZ is unset.
 */
#ifndef CLI_I18N_H
#define CLI_I18N_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <libintl.h>

#define _(s) gettext(s)
#define N_(s) (s)

/* Once, before any message: chooses the language, finds the catalogue,
 * sets the display zone. */
void cli_i18n_init(void);
/* True when the CLI speaks French. */
bool cli_french(void);
/* t in the local zone, for a person: "mardi 16 avril 2027, 10 h 30" in
 * French, "2027-04-16 10:30 CEST" in English; short (tables, live
 * events): "16/04/2027 10 h 30", "2027-04-16 10:30". Returns buf. */
const char *cli_time_words(time_t t, bool longform, char *buf, size_t len);

#endif
