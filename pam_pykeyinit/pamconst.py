"""PAM return codes and flags, spelled and numbered as in Linux-PAM's
<security/_pam_types.h>. tests/unit/test_headers.py compares every value
with the installed header, so the pure logic needs no pamh to name a code."""

PAM_SUCCESS = 0
PAM_SERVICE_ERR = 3
PAM_SYSTEM_ERR = 4
PAM_BUF_ERR = 5
PAM_PERM_DENIED = 6
PAM_USER_UNKNOWN = 10
PAM_SESSION_ERR = 14
PAM_CRED_ERR = 17
PAM_IGNORE = 25
PAM_MODULE_UNKNOWN = 28

PAM_ESTABLISH_CRED = 0x0002
PAM_DELETE_CRED = 0x0004
PAM_REINITIALIZE_CRED = 0x0008
PAM_REFRESH_CRED = 0x0010
