"""pam_pykeyinit: pam_keyinit's session keyring, as a pam_python module.

Kept empty of imports: a login runs only the modules it needs
(trust.LOGIN_MODULES).
"""

__version__ = "0.3.0"
