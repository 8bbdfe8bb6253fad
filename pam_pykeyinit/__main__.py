"""`python3 -m pam_pykeyinit COMMAND`: the pykeyinit command from a checkout."""

import sys

from .cli import main

sys.exit(main())
