#!/bin/sh
# pam_exec probe for `make demo`: what the PAM application holds now.
echo "---- $1: keyctl show @s, as the demo process sees it"
keyctl show @s 2>&1 | sed 's/^/    /'
