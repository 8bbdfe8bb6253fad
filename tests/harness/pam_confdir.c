/*
 * pam_confdir: run one PAM service read from a folder of the caller's
 * choice, as libpam itself reads it: pam_start_confdir(3) (Linux-PAM 1.4
 * and later) takes the service's file from CONFDIR alone, and every
 * include, substack and @include is followed by libpam, not by us. What
 * the stack does is what libpam made of the files: each call's result,
 * and each message the stack's modules sent (pam_echo's text), in order.
 *
 *   pam_confdir CONFDIR SERVICE USER CALL...
 *
 *   CALL: auth | acct | open | close | setcred (PAM_ESTABLISH_CRED) |
 *         chauthtok
 *
 * Output lines: "start -> RC", "CALL -> RC NAME", "conv: TEXT".
 * The exit status is 0 whatever the calls returned; 2 for bad words.
 */
#define _GNU_SOURCE
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pamconv.h"

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 4) {
		fprintf(stderr, "usage: pam_confdir CONFDIR SERVICE USER CALL...\n");
		return 2;
	}
	pam_handle_t *ph = NULL;
	int rc = pam_start_confdir(argv[2], argv[3], &conversation, argv[1], &ph);
	printf("start -> %d\n", rc);
	if (rc != PAM_SUCCESS)
		return 0;
	for (int i = 4; i < argc; i++) {
		const char *c = argv[i];
		if (!strcmp(c, "auth"))
			rc = pam_authenticate(ph, 0);
		else if (!strcmp(c, "acct"))
			rc = pam_acct_mgmt(ph, 0);
		else if (!strcmp(c, "open"))
			rc = pam_open_session(ph, 0);
		else if (!strcmp(c, "close"))
			rc = pam_close_session(ph, 0);
		else if (!strcmp(c, "setcred"))
			rc = pam_setcred(ph, PAM_ESTABLISH_CRED);
		else if (!strcmp(c, "chauthtok"))
			rc = pam_chauthtok(ph, 0);
		else {
			fprintf(stderr, "unknown call %s\n", c);
			return 2;
		}
		printf("%s -> %d %s\n", c, rc, pam_strerror(ph, rc));
	}
	pam_end(ph, rc);
	return 0;
}
