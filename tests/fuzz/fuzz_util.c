/*
 * tests/fuzz/fuzz_util.c - small helpers for the harnesses (fuzz_common.h).
 */
#include "fuzz_common.h"

#include <dirent.h>

int fz_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}
