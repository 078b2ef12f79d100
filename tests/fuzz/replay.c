/*
 * The replay driver: a main() of our own, linked with one harness, that
 * feeds it every file named on the command line (or found in a directory
 * named there). It needs no libFuzzer, so every build, gcc included,
 * checks the seeds and the inputs that once crashed (tests/fuzz/regressions/).
 *
 *	fuzz_<name>_replay DIR|FILE...
 *
 * Exits 0 if every input went through, 1 if one could not be read or
 * there was nothing to replay; a crash is a crash.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Our messages: a harness may point stderr elsewhere to silence the code
 * it tests, so the stream is the one stderr was before. */
static FILE *errs;

/* A harness need not define it. */
extern int LLVMFuzzerInitialize(int *argc, char ***argv)
    __attribute__((weak));

static int
replay_file(const char *path)
{
	struct stat st;
	uint8_t *buf;
	size_t len;
	FILE *f;

	if ((f = fopen(path, "rb")) == NULL || fstat(fileno(f), &st) != 0) {
		fprintf(errs, "replay: %s: %s\n", path, strerror(errno));
		if (f != NULL)
			fclose(f);
		return -1;
	}
	len = (size_t)st.st_size;
	/* Exactly len bytes (malloc(0) aside), so that the sanitizers see
	 * a read past the end of the input. */
	if ((buf = malloc(len > 0 ? len : 1)) == NULL) {
		fprintf(errs, "replay: out of memory\n");
		exit(1);
	}
	if (fread(buf, 1, len, f) != len) {
		fprintf(errs, "replay: %s: short read\n", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	printf("replay: %s (%zu bytes)\n", path, len);
	fflush(stdout);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The files of dir, in name order so that runs compare; dot files are
 * skipped (editors, .gitkeep). Returns how many, or -1. */
static int
replay_dir(const char *dir)
{
	struct dirent *e;
	char **names = NULL, path[4096];
	size_t n = 0, cap = 0, i;
	int count = 0;
	DIR *d;

	if ((d = opendir(dir)) == NULL) {
		fprintf(errs, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			if ((names = realloc(names, cap * sizeof *names)) ==
			    NULL) {
				fprintf(errs, "replay: out of memory\n");
				exit(1);
			}
		}
		if ((names[n++] = strdup(e->d_name)) == NULL) {
			fprintf(errs, "replay: out of memory\n");
			exit(1);
		}
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof *names, by_name);
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		if (count >= 0 && replay_file(path) == 0)
			count++;
		else
			count = -1;
		free(names[i]);
	}
	free(names);
	return count;
}

int
main(int argc, char **argv)
{
	struct stat st;
	int i, n, total = 0;

	errs = stderr;
	if (argc < 2) {
		fprintf(errs, "usage: %s DIR|FILE...\n", argv[0]);
		return 2;
	}
	if (LLVMFuzzerInitialize != NULL)
		LLVMFuzzerInitialize(&argc, &argv);
	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) != 0) {
			fprintf(errs, "replay: %s: %s\n", argv[i],
			    strerror(errno));
			return 1;
		}
		n = S_ISDIR(st.st_mode) ? replay_dir(argv[i]) :
		    replay_file(argv[i]) == 0 ? 1 : -1;
		if (n < 0)
			return 1;
		total += n;
	}
	if (total == 0) {
		fprintf(errs, "replay: nothing to replay\n");
		return 1;
	}
	printf("replay: %d inputs, no crash\n", total);
	return 0;
}
