/*
 * replay.c - the plain driver of a fuzz target, for make check: runs
 * LLVMFuzzerTestOneInput() once on every file of each directory (or file)
 * named on the command line, or of $FUZZ_CORPUS_DIR/FUZZ_TARGET when none
 * is.  Needs no libFuzzer; a broken property aborts, as under libFuzzer.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzz.h"

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	size_t cap = 1 << 16, n = 0;
	uint8_t *buf = malloc(cap);
	while (buf) {
		n += fread(buf + n, 1, cap - n, f);
		if (n < cap)
			break;
		uint8_t *nb = realloc(buf, cap *= 2);
		if (!nb)
			free(buf);
		buf = nb;
	}
	int bad = ferror(f);
	fclose(f);
	if (!buf || bad) {
		free(buf);
		fprintf(stderr, "%s: cannot read\n", path);
		return -1;
	}
	/* An exact-size copy, so that ASan sees a read past the end. */
	uint8_t *exact = malloc(n ? n : 1);
	if (!exact) {
		free(buf);
		return -1;
	}
	memcpy(exact, buf, n);
	free(buf);
	LLVMFuzzerTestOneInput(exact, n);
	free(exact);
	return 0;
}

/* Replays path (a file, or every file of a directory, in name order). */
static int replay(const char *path, unsigned *count)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return replay_file(path);
	}
	struct dirent **ents;
	int n = scandir(path, &ents, NULL, alphasort), rc = 0;
	if (n < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char file[4096];
		if (ents[i]->d_name[0] != '.') {
			snprintf(file, sizeof file, "%s/%s", path,
			         ents[i]->d_name);
			if (stat(file, &st) == 0 && S_ISREG(st.st_mode)) {
				(*count)++;
				if (replay_file(file) != 0)
					rc = -1;
			}
		}
		free(ents[i]);
	}
	free(ents);
	return rc;
}

int main(int argc, char **argv)
{
	unsigned count = 0;
	int rc = 0;
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			if (replay(argv[i], &count) != 0)
				rc = 1;
	} else {
		const char *dir = getenv("FUZZ_CORPUS_DIR");
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/fuzz",
		         FUZZ_TARGET);
		if (replay(path, &count) != 0)
			rc = 1;
	}
	printf("%s: %u inputs replayed%s\n", FUZZ_TARGET, count,
	       rc ? ", some could not be read" : "");
	if (count == 0)
		rc = 1; /* a missing corpus is a failure, not a pass */
	return rc;
}
