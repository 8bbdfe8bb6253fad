/*
 * The conversation of the harness programs (pamharness.c, pam_confdir.c):
 * every prompt gets an empty answer, and each info or error message a
 * module sends is printed as "conv: MESSAGE" for the tests to read.
 */
#ifndef PAMCONV_H
#define PAMCONV_H

#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	(void)data;
	struct pam_response *r = calloc(n, sizeof(*r));
	if (!r)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++)
		if (msg[i]->msg_style == PAM_TEXT_INFO || msg[i]->msg_style == PAM_ERROR_MSG)
			printf("conv: %s\n", msg[i]->msg);
	*resp = r;
	return PAM_SUCCESS;
}

static const struct pam_conv conversation = {conv, NULL};

#endif
