"""A pam_python module for tests/pam/test_pam_python_builds.py: at
open_session it writes one JSON object about the interpreter it runs in to
the file named by its argument report=PATH, sets a PAM environment variable
(pamh.env, which needs upstream's 2db1a82 on Python 3), and succeeds."""

import json
import os
import sys


def pam_sm_open_session(pamh, flags, argv):
    report = dict(a.split("=", 1) for a in argv[1:] if "=" in a)["report"]
    import site

    pamh.env["PYKT_ENV_TEST"] = "set"
    data = {
        "version": sys.version_info[:2],
        "path": sys.path,
        "prefix": sys.prefix,
        "prefixes": [sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix],
        "site_packages": site.getsitepackages(),
        "executable": sys.executable,
        "flags": {
            name: getattr(sys.flags, name)
            for name in ("isolated", "ignore_environment", "no_user_site", "dont_write_bytecode")
        },
        "all_flags": list(sys.flags),
        "user_site": site.ENABLE_USER_SITE,
        # the process's environment as os.environ shows it (patch 3005
        # starts Python without one and fills os.environ afterwards)
        "environ": {k: v for k, v in os.environ.items() if k.startswith("PYKT_")},
        "planted": sorted(m for m in sys.modules if m.startswith("pykt_planted")),
        "env": pamh.env.get("PYKT_ENV_TEST"),
    }
    with open(report, "w") as f:
        json.dump(data, f)
    return pamh.PAM_SUCCESS


def pam_sm_close_session(pamh, flags, argv):
    return pamh.PAM_SUCCESS
