#!/bin/bash
# `make rpm` on Debian: rpmbuild with the stand-in macros of macros.debian.
# They are given as --define, not with --load: rpm 4.20 (Debian 13) does not
# expand --load'ed macros in the build scripts (%generate_buildrequires
# fails with "%pyproject_buildrequires: not found"); --define works with
# Debian 12's rpm 4.18 and 13's 4.20 alike.
#
#   packaging/rpm/rpmbuild-debian.sh TOPDIR SPEC
set -euo pipefail
macros=$(dirname "$0")/macros.debian
defines=()
while IFS= read -r line; do
    case $line in '#'* | '') continue ;; esac
    defines+=(--define "${line#%}")
done <"$macros"
exec rpmbuild -bb --nodeps "${defines[@]}" --define "_topdir $1" "$2"
