/*
 * failinject.so: LD_PRELOAD interposer on libc's syscall(), to make the Nth
 * call that matches fail with a chosen errno, once. pam_pykeyinit makes all
 * its system calls through syscall() (looked up with dlopen(NULL), which
 * finds the preloaded symbol first), so this reaches every one of them,
 * restores included, without touching anything else in the process.
 *
 *   FAILINJECT="NR:A0,A1,A2:ERRNO:NTH[;...]"
 *
 * NR is the system call number, each A is a decimal argument or '*', ERRNO
 * a number, NTH the 1-based count of matching calls that fails (0: all).
 * Arguments are compared as 32-bit values (uid_t, gid_t, keyctl ops).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RULES 8

struct rule {
	long nr;
	int any[3];
	unsigned int arg[3];
	int err;
	long nth, seen;
};

static struct rule rules[MAX_RULES];
static int nrules = -1;

/* Read FAILINJECT when the library is loaded, not at the first syscall():
 * this project's pam_python (patch 3005) starts Python with an empty
 * environ, and Python makes its first syscall() (gettid) in that window. */
__attribute__((constructor)) static void parse(void)
{
	nrules = 0;
	const char *spec = getenv("FAILINJECT");
	if (!spec)
		return;
	char *copy = strdup(spec), *save = NULL;
	for (char *part = strtok_r(copy, ";", &save); part && nrules < MAX_RULES;
	     part = strtok_r(NULL, ";", &save)) {
		struct rule *r = &rules[nrules];
		char a[3][32];
		if (sscanf(part, "%ld:%31[^,],%31[^,],%31[^:]:%d:%ld", &r->nr, a[0], a[1], a[2],
			   &r->err, &r->nth) != 6) {
			fprintf(stderr, "failinject: bad rule %s\n", part);
			continue;
		}
		for (int i = 0; i < 3; i++) {
			r->any[i] = !strcmp(a[i], "*");
			r->arg[i] = (unsigned int)strtol(a[i], NULL, 10);
		}
		nrules++;
	}
	free(copy);
}

long syscall(long nr, ...)
{
	static long (*real)(long, ...);
	va_list ap;
	long a[6];
	va_start(ap, nr);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (!real)
		real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
	if (nrules < 0)
		parse();
	for (int i = 0; i < nrules; i++) {
		struct rule *r = &rules[i];
		if (r->nr != nr)
			continue;
		int match = 1;
		for (int j = 0; j < 3; j++)
			if (!r->any[j] && (unsigned int)a[j] != r->arg[j])
				match = 0;
		if (!match)
			continue;
		r->seen++;
		if (r->nth == 0 || r->nth == r->seen) {
			errno = r->err;
			return -1;
		}
	}
	return real(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}
