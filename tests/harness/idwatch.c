/*
 * idwatch.so: LD_PRELOAD interposer on libc's syscall() that writes, for
 * every keyctl call, the calling thread's IDs at the moment of the call to
 * standard error, then makes the call unchanged. Both modules reach the
 * kernel's keyctl through syscall(): pam_keyinit.c's keyctl() wrapper calls
 * it through libc, and pam_pykeyinit looks it up with dlopen(NULL), which
 * finds the preloaded symbol first (kernel.py). So the IDs each module
 * revokes or makes a keyring with are seen from outside either module,
 * whatever calls moved them there (glibc's setregid(), raw setresgid).
 *
 *   LD_PRELOAD=idwatch.so PROGRAM...
 *
 * Output lines (stderr): "idwatch keyctl OP uid=R,E,S,FS gid=R,E,S,FS".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

typedef long (*syscall_fn)(long, ...);

long syscall(long nr, ...)
{
	static syscall_fn real;
	if (!real)
		real = (syscall_fn)dlsym(RTLD_NEXT, "syscall");
	va_list ap;
	long a[6];
	va_start(ap, nr);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (nr == SYS_keyctl) {
		int saved = errno;
		uid_t u[3];
		gid_t g[3];
		real(SYS_getresuid, &u[0], &u[1], &u[2]); /* this thread's, as the kernel sees it */
		real(SYS_getresgid, &g[0], &g[1], &g[2]);
		long fsu = real(SYS_setfsuid, -1), fsg = real(SYS_setfsgid, -1); /* -1: read only */
		fprintf(stderr, "idwatch keyctl %ld uid=%u,%u,%u,%ld gid=%u,%u,%u,%ld\n", a[0], u[0],
			u[1], u[2], fsu, g[0], g[1], g[2], fsg);
		fflush(stderr);
		errno = saved;
	}
	return real(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}
