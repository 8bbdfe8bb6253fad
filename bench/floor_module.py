"""The floor for `make bench`: a pam_python module that returns at once.

Its cost is what any pam_python module pays per login: loading
pam_python.so, starting and finalising the embedded interpreter, running
the file. pam_pykeyinit's own cost is what it adds on top of this.
"""


def pam_sm_open_session(pamh, flags, argv):
    return pamh.PAM_SUCCESS


def pam_sm_close_session(pamh, flags, argv):
    return pamh.PAM_SUCCESS
