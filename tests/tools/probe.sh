#!/bin/sh
# Run by pam_exec right after the module under test: prints, one "probe:"
# line each, what the PAM caller (this shell's parent) now holds. Its
# session keyring is inherited over fork and exec (session-keyring(7)).
# With a file as its argument it appends there instead: a Python PAM
# application (pamela) drops what pam_exec sends to its conversation.
[ -n "${1:-}" ] && exec >>"$1"
echo "probe: type=$PAM_TYPE"
echo "probe: s=$(keyctl rdescribe @s 2>&1)"
echo "probe: sid=$(keyctl show @s 2>/dev/null | sed -n 2p | awk '{print $1}')"
for id in $(keyctl rlist @s 2>/dev/null); do
    echo "probe: link=$(keyctl rdescribe "$id" 2>&1)"
done
awk '/^(Uid|Gid):/ {print "probe: " $1 " " $2 " " $3 " " $4 " " $5}' "/proc/$PPID/status"
