/*
 * pamharness: run a scripted sequence of PAM calls over several handles of
 * one process, and in threads, printing each call's result and what the
 * calling thread holds. Python programs cannot do this: python-pam and
 * pamela crash as soon as a pam_python line runs in their process.
 *
 *   pamharness WORD...      (words run in order)
 *
 *   start H SERVICE USER    pam_start into handle slot H (0-7)
 *   open H | close H        pam_open_session / pam_close_session
 *   setcred H FLAGS         pam_setcred (FLAGS: establish, delete, refresh,
 *                           reinit or a number)
 *   auth H | acct H | chauthtok H
 *   end H                   pam_end
 *   show                    the calling thread's IDs and session keyring
 *   recall                  describe, from the calling thread, the session
 *                           keyring the last 'show' of any thread printed
 *   watch-start             start a thread that samples its own IDs and @s
 *                           until watch-stop, counting any change
 *   watch-stop              stop it and print what it saw
 *   thread ... endthread    run the words in between in a new thread, join it
 *   session-anon            join a new anonymous session keyring (as
 *                           `keyctl session -`)
 *   setids R,E,S R,E,S      setresgid(2) to the second triple, then
 *                           setresuid(2) to the first (-1: unchanged), raw
 *                           system calls: this thread's IDs, as a
 *                           set-user-ID or set-group-ID program starts. Set
 *                           here, not before exec: the dynamic linker
 *                           ignores LD_PRELOAD in a program started with
 *                           real and effective IDs that differ (AT_SECURE)
 *   repeat N ... endrepeat  run the words in between N times (quietly)
 *   wait                    block until standard input reaches EOF
 *   sleep-ms N              pause N milliseconds
 *
 * Output lines: "CALL H -> RC NAME", "setids -> RC" and "show ..." /
 * "watch ...".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KEY_SPEC_SESSION_KEYRING -3
#define KEYCTL_GET_KEYRING_ID 0
#define KEYCTL_JOIN_SESSION_KEYRING 1
#define KEYCTL_DESCRIBE 6
#define KEYCTL_READ 11
#define MAX_HANDLES 64

static pam_handle_t *handles[MAX_HANDLES];

#include "pamconv.h"

static long keyctl(long op, long a2, long a3, long a4)
{
	return syscall(__NR_keyctl, op, a2, a3, a4);
}

static void describe(long serial, char *buf, size_t len)
{
	long n = keyctl(KEYCTL_DESCRIBE, serial, (long)buf, (long)len);
	if (n < 0)
		snprintf(buf, len, "error:%s", strerror(errno));
	else
		buf[len - 1] = 0;
}

static void ids(long out[8])
{
	uid_t u[3];
	gid_t g[3];
	getresuid(&u[0], &u[1], &u[2]); /* plain system calls: this thread's */
	getresgid(&g[0], &g[1], &g[2]);
	out[0] = u[0]; out[1] = u[1]; out[2] = u[2];
	out[3] = syscall(SYS_setfsuid, -1);
	out[4] = g[0]; out[5] = g[1]; out[6] = g[2];
	out[7] = syscall(SYS_setfsgid, -1);
}

static long last_shown; /* the serial the last 'show' printed, for 'recall' */

static void show(void)
{
	long id[8];
	char buf[512];
	ids(id);
	printf("show uid=%ld,%ld,%ld,%ld gid=%ld,%ld,%ld,%ld\n", id[0], id[1], id[2], id[3],
	       id[4], id[5], id[6], id[7]);
	long s = keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0, 0);
	if (s < 0) {
		printf("show s=error:%s\n", strerror(errno));
		return;
	}
	describe(s, buf, sizeof(buf));
	printf("show s=%ld %s\n", s, buf);
	last_shown = s;
	int32_t links[64];
	long n = keyctl(KEYCTL_READ, s, (long)links, sizeof(links));
	for (long i = 0; i >= 0 && i < n / 4 && i < 64; i++) {
		describe(links[i], buf, sizeof(buf));
		printf("show link=%d %s\n", links[i], buf);
	}
}

/* --- the watcher thread ------------------------------------------------- */
static volatile int watching;
static pthread_t watcher;
static long watch_samples, watch_changes, watch_first[9];

static void *watch(void *arg)
{
	(void)arg;
	long now[9];
	ids(watch_first);
	watch_first[8] = keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0, 0);
	while (watching) {
		ids(now);
		now[8] = keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0, 0);
		watch_samples++;
		if (memcmp(now, watch_first, sizeof(now)) != 0)
			watch_changes++;
	}
	return NULL;
}

static int flag_value(const char *word)
{
	if (!strcmp(word, "establish")) return PAM_ESTABLISH_CRED;
	if (!strcmp(word, "delete")) return PAM_DELETE_CRED;
	if (!strcmp(word, "refresh")) return PAM_REFRESH_CRED;
	if (!strcmp(word, "reinit")) return PAM_REINITIALIZE_CRED;
	return atoi(word);
}

static int slot(const char *word)
{
	int h = atoi(word);
	if (h < 0 || h >= MAX_HANDLES) {
		fprintf(stderr, "bad handle %s\n", word);
		exit(2);
	}
	return h;
}

static int quiet;
static long repeat_failures;

static void report(const char *call, int h, int rc)
{
	pam_handle_t *ph = handles[h];
	if (quiet) {
		repeat_failures += rc != PAM_SUCCESS;
		return;
	}
	printf("%s %d -> %d %s\n", call, h, rc, pam_strerror(ph, rc));
	fflush(stdout);
}

/* index just past the word that closes the block opened at w[i] */
static int block_end(char **w, int n, int i, const char *open, const char *close)
{
	int depth = 1, j = i + 1;
	while (j < n && depth) {
		if (!strcmp(w[j], open)) depth++;
		if (!strcmp(w[j], close)) depth--;
		j++;
	}
	return j;
}

struct script { char **words; int n; };
static void run(char **w, int n);

static void *thread_main(void *arg)
{
	struct script *s = arg;
	run(s->words, s->n);
	return NULL;
}

static void run(char **w, int n)
{
	for (int i = 0; i < n; i++) {
		const char *c = w[i];
		int h;
		if (!strcmp(c, "start")) {
			h = slot(w[++i]);
			const char *svc = w[++i], *user = w[++i];
			int rc = pam_start(svc, user, &conversation, &handles[h]);
			report("start", h, rc);
		} else if (!strcmp(c, "end")) {
			h = slot(w[++i]);
			int rc = pam_end(handles[h], PAM_SUCCESS);
			if (!quiet)
				printf("end %d -> %d\n", h, rc);
			handles[h] = NULL;
		} else if (!strcmp(c, "open")) {
			h = slot(w[++i]);
			report("open", h, pam_open_session(handles[h], 0));
		} else if (!strcmp(c, "close")) {
			h = slot(w[++i]);
			report("close", h, pam_close_session(handles[h], 0));
		} else if (!strcmp(c, "setcred")) {
			h = slot(w[++i]);
			int f = flag_value(w[++i]);
			report("setcred", h, pam_setcred(handles[h], f));
		} else if (!strcmp(c, "auth")) {
			h = slot(w[++i]);
			report("auth", h, pam_authenticate(handles[h], 0));
		} else if (!strcmp(c, "acct")) {
			h = slot(w[++i]);
			report("acct", h, pam_acct_mgmt(handles[h], 0));
		} else if (!strcmp(c, "chauthtok")) {
			h = slot(w[++i]);
			report("chauthtok", h, pam_chauthtok(handles[h], 0));
		} else if (!strcmp(c, "show")) {
			show();
		} else if (!strcmp(c, "recall")) {
			char buf[512];
			describe(last_shown, buf, sizeof(buf));
			printf("recall s=%ld %s\n", last_shown, buf);
		} else if (!strcmp(c, "session-anon")) {
			printf("session-anon -> %ld\n", keyctl(KEYCTL_JOIN_SESSION_KEYRING, 0, 0, 0));
		} else if (!strcmp(c, "setids")) {
			long u[3], g[3];
			if (i + 2 >= n || sscanf(w[i + 1], "%ld,%ld,%ld", &u[0], &u[1], &u[2]) != 3 ||
			    sscanf(w[i + 2], "%ld,%ld,%ld", &g[0], &g[1], &g[2]) != 3) {
				fprintf(stderr, "setids needs R,E,S R,E,S\n");
				exit(2);
			}
			i += 2;
			/* the gids first: setting the uids may give up the privilege */
			long rc = syscall(SYS_setresgid, g[0], g[1], g[2]);
			if (rc == 0)
				rc = syscall(SYS_setresuid, u[0], u[1], u[2]);
			printf("setids -> %ld\n", rc < 0 ? -errno : rc);
		} else if (!strcmp(c, "watch-start")) {
			watching = 1;
			pthread_create(&watcher, NULL, watch, NULL);
			while (!watch_samples)
				usleep(100);
		} else if (!strcmp(c, "watch-stop")) {
			watching = 0;
			pthread_join(watcher, NULL);
			printf("watch samples=%ld changes=%ld\n", watch_samples, watch_changes);
		} else if (!strcmp(c, "repeat")) {
			long times = atol(w[i + 1]);
			int j = block_end(w, n, i + 1, "repeat", "endrepeat");
			quiet++;
			for (long k = 0; k < times; k++)
				run(w + i + 2, j - i - 3);
			quiet--;
			printf("repeat %ld failures=%ld\n", times, repeat_failures);
			i = j - 1;
		} else if (!strcmp(c, "sleep-ms")) {
			usleep(1000 * atol(w[++i]));
		} else if (!strcmp(c, "wait")) {
			char buf[64];
			while (fread(buf, 1, sizeof(buf), stdin) > 0)
				;
		} else if (!strcmp(c, "thread")) {
			int j = block_end(w, n, i, "thread", "endthread");
			struct script s = {w + i + 1, j - i - 2};
			pthread_t t;
			pthread_create(&t, NULL, thread_main, &s);
			pthread_join(t, NULL);
			i = j - 1;
		} else {
			fprintf(stderr, "unknown word %s\n", c);
			exit(2);
		}
		fflush(stdout);
	}
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	run(argv + 1, argc - 1);
	return 0;
}
