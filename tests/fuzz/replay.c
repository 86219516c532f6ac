// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Runs a fuzz target's entry point on files and directories of files
 * (seed corpus, regression inputs) without libFuzzer, so every build
 * checks them. A harness aborts on a broken invariant; an input that
 * cannot be read, or no input at all, is a hard error (99).
 *
 * usage: fuzz-replay-X PATH...
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../lib/check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0, got;

	if (!f) {
		perror(path);
		return -1;
	}
	do {
		if (cap - n < 65536) {
			uint8_t *b = realloc(buf, cap + 65536);

			if (!b) {
				free(buf);
				fclose(f);
				return -1;
			}
			buf = b;
			cap += 65536;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned int files = 0;

	for (int i = 1; i < argc; i++) {
		struct dirent **ents;
		struct stat st;
		int n;

		if (stat(argv[i], &st)) {
			perror(argv[i]);
			return TEST_ERROR;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (run_file(argv[i]))
				return TEST_ERROR;
			files++;
			continue;
		}
		n = scandir(argv[i], &ents, NULL, alphasort);
		if (n < 0) {
			perror(argv[i]);
			return TEST_ERROR;
		}
		for (int k = 0; k < n; k++) {
			char path[4096];

			if (ents[k]->d_name[0] != '.' &&
			    snprintf(path, sizeof(path), "%s/%s", argv[i], ents[k]->d_name) <
				    (int)sizeof(path) &&
			    !stat(path, &st) && S_ISREG(st.st_mode)) {
				if (run_file(path))
					return TEST_ERROR;
				files++;
			}
			free(ents[k]);
		}
		free(ents);
	}
	printf("%u inputs replayed\n", files);
	return files ? TEST_PASS : TEST_ERROR;
}
