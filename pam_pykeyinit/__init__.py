"""pam_pykeyinit: pam_keyinit's session keyring, as a pam_python module.

Kept empty of imports: pam_module.py imports only what a login needs.
"""

__version__ = "0.2.0"
