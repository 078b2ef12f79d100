#include "cli_i18n.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool french = true;

/* The language asked for: STRAPONTIN_LANG, else the first locale variable
 * set. French unless it names English. */
static bool
wants_english(void)
{
	static const char *const vars[] = {"STRAPONTIN_LANG", "LC_ALL",
	    "LC_MESSAGES", "LANG"};
	const char *v;
	size_t i;

	for (i = 0; i < sizeof vars / sizeof vars[0]; i++) {
		v = getenv(vars[i]);
		if (v != NULL && *v != '\0')
			return strncmp(v, "en", 2) == 0;
	}
	return false;
}

/* Where the catalogues are: $STRAPONTIN_LOCALEDIR; the build tree's when
 * this program is run from the build tree (tests); else the installed
 * ones. */
static const char *
locale_dir(void)
{
	static char exe[4096];
	const char *env = getenv("STRAPONTIN_LOCALEDIR");
	size_t blen = strlen(STRAPONTIN_BUILD_DIR);
	ssize_t n;

	if (env != NULL && *env != '\0')
		return env;
	n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = '\0';
		if (strncmp(exe, STRAPONTIN_BUILD_DIR, blen) == 0 &&
		    exe[blen] == '/')
			return STRAPONTIN_BUILD_DIR "/locale";
	}
	return STRAPONTIN_LOCALEDIR;
}

void
cli_i18n_init(void)
{
	const char *m;

	/* Display zone first: times typed without a zone are read in it
	 * too. */
	if (getenv("TZ") == NULL)
		setenv("TZ", "Europe/Paris", 1);
	tzset();
	french = !wants_english();
	if (!french)
		return;	/* the source strings are English */
	/* Only the categories gettext needs: numbers and times keep the C
	 * conventions, which the machine formats rely on. gettext ignores
	 * LANGUAGE in the C locale, which an unset LANG gives: C.UTF-8 is
	 * the C locale under another name, always there in glibc. */
	setlocale(LC_CTYPE, "");
	m = setlocale(LC_MESSAGES, "");
	if (m == NULL || strcmp(m, "C") == 0 || strcmp(m, "POSIX") == 0)
		setlocale(LC_MESSAGES, "C.UTF-8");
	setenv("LANGUAGE", "fr", 1);
	bindtextdomain("strapontin", locale_dir());
	bind_textdomain_codeset("strapontin", "UTF-8");
	textdomain("strapontin");
}

bool
cli_french(void)
{
	return french;
}

const char *
cli_time_words(time_t t, bool longform, char *buf, size_t len)
{
	static const char *const days[] = {"dimanche", "lundi", "mardi",
	    "mercredi", "jeudi", "vendredi", "samedi"};
	static const char *const months[] = {"janvier", "février", "mars",
	    "avril", "mai", "juin", "juillet", "août", "septembre",
	    "octobre", "novembre", "décembre"};
	struct tm tm;

	localtime_r(&t, &tm);
	if (!french) {
		if (strftime(buf, len, longform ? "%Y-%m-%d %H:%M %Z" :
		    "%Y-%m-%d %H:%M", &tm) == 0 && len > 0)
			buf[0] = '\0';
		return buf;
	}
	if (longform)
		snprintf(buf, len, "%s %d%s %s %d, %d h %02d",
		    days[tm.tm_wday], tm.tm_mday, tm.tm_mday == 1 ? "er" : "",
		    months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
		    tm.tm_min);
	else
		snprintf(buf, len, "%02d/%02d/%d %d h %02d", tm.tm_mday,
		    tm.tm_mon + 1, tm.tm_year + 1900, tm.tm_hour, tm.tm_min);
	return buf;
}
