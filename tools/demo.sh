#!/bin/bash
# `make demo`: open and close one session through pam_pykeyinit with
# pamtester and show the session keyring before, during and after it.
# Creates a demo user and a demo PAM service, and removes both at the end.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
user=pykeyinit-demo
service=pykeyinit-demo
made_user=
capture=$(mktemp -d)

cleanup() {
    rm -f "/etc/pam.d/$service"
    rm -rf "$capture"
    if [ -n "$made_user" ]; then userdel "$user"; fi
}
trap cleanup EXIT

if [ "$(id -u)" != 0 ]; then
    echo "make demo must run as root (it writes /etc/pam.d/$service and adds a user)" >&2
    exit 1
fi
if ! id "$user" >/dev/null 2>&1; then
    useradd -M -s /usr/sbin/nologin "$user"
    made_user=1
fi
probe="$repo/tools/demo-probe.sh"
cat >"/etc/pam.d/$service" <<STACK
session optional pam_exec.so stdout quiet type=open_session $probe before
session required pam_python.so $repo/pam_pykeyinit/pam_module.py force revoke debug
session optional pam_exec.so stdout quiet type=open_session $probe during
session optional pam_exec.so stdout quiet type=close_session $probe after
STACK

echo "== /etc/pam.d/$service"
sed 's/^/    /' "/etc/pam.d/$service"
echo "== user $user: $(id "$user")"
echo "== pamtester $service $user open_session close_session"
# The module's syslog lines, caught on a private /dev/log for the demo.
set +e
unshare --mount /usr/bin/python3 "$repo/tests/tools/logcapture.py" "$capture/log.json" -- \
    pamtester "$service" "$user" open_session close_session
rc=$?
set -e
echo "== what pam_pykeyinit logged (facility authpriv)"
/usr/bin/python3 -c '
import json, sys
for e in json.load(open(sys.argv[1]))[1:]:  # the first entry is the canary of logcapture.py
    print("    " + e["text"])
' "$capture/log.json"
echo "== pamtester exit status: $rc"
echo "   during: a _ses keyring owned by $user's uid and gid, with _uid.$(id -u "$user") linked in;"
echo "   after: revoked at close_session because the line says 'revoke'."
exit "$rc"
