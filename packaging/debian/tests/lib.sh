# shellcheck shell=bash
# Shared by the tests: a throw-away user reached by ssh with a key, and the
# probes run in and after its session.
say() { echo "### $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

wait_for_boot() {
    local state
    state=$(timeout 600 systemctl is-system-running --wait 2>&1) || true
    say "systemctl is-system-running --wait: $state"
    [ "$state" = running ] || systemctl --failed --no-legend --no-pager || true
    systemctl is-active --quiet ssh.service || fail "ssh.service is not active"
    say "ssh.service: $(systemctl is-active ssh.service)"
    say "kernel $(uname -r); $(. /etc/os-release && echo "$PRETTY_NAME")"
    say "sshd's session stack: $(grep -E '^session.*keyinit|^@include common-session' /etc/pam.d/sshd | tr '\n' '|')"
}

make_user() {  # USER: a user with a fresh ssh key in $KEY
    local u=$1
    id "$u" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$u"
    KEY=${AUTOPKGTEST_TMP:-/tmp}/id_$u
    rm -f "$KEY" "$KEY.pub"
    ssh-keygen -q -t ed25519 -N '' -f "$KEY"
    install -d -m 0700 -o "$u" -g "$u" "/home/$u/.ssh"
    install -m 0600 -o "$u" -g "$u" "$KEY.pub" "/home/$u/.ssh/authorized_keys"
}

# What the session sees; then a process that keeps the session keyring
# after logout (as tmux would), so that its revocation can be seen.
SESSION_PROBE='
echo "XDG_SESSION_ID=$XDG_SESSION_ID XDG_RUNTIME_DIR=$XDG_RUNTIME_DIR"
echo "S=$(keyctl rdescribe @s 2>&1)"
echo "ID=$(keyctl id @s 2>&1)"
keyctl show @s 2>&1
echo "--- loginctl show-session $XDG_SESSION_ID"
loginctl show-session "$XDG_SESSION_ID" 2>&1
echo "---"
echo "USERMGR_S=$(timeout 120 systemd-run --user --wait -P -q keyctl rdescribe @s 2>&1)"
echo "USERMGR_ID=$(timeout 120 systemd-run --user --wait -P -q keyctl id @s 2>&1)"
command -v pykeyinit >/dev/null && { echo "--- pykeyinit status"; pykeyinit status 2>&1; }
setsid sleep 300 </dev/null >/dev/null 2>&1 &
'

ssh_login() {  # USER -> the probe output in $OUT, @s serial in $SID
    local u=$1
    OUT=$(ssh -i "$KEY" -o BatchMode=yes -o StrictHostKeyChecking=no \
        -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "$u@localhost" "$SESSION_PROBE") \
        || fail "ssh login as $u failed"
    echo "$OUT"
    SID=$(echo "$OUT" | sed -n 's/^ID=\([0-9][0-9]*\)$/\1/p')
    [ -n "$SID" ] || fail "no session keyring id in the ssh session"
    echo "$OUT" | grep -q "^S=keyring;$(id -u "$u");$(id -g "$u");[^;]*;_ses" \
        || fail "the ssh session's @s is not a _ses keyring of $u"
}

after_logout() {  # USER: the session keyring $SID as its owner sees it, once the session closed
    local u=$1 seen i
    for i in $(seq 60); do
        seen=$(setpriv --reuid="$(id -u "$u")" --regid="$(id -g "$u")" --clear-groups \
            keyctl rdescribe "$SID" 2>&1) || true
        case $seen in *revoked*) break ;; esac
        sleep 1
    done
    say "after logout, keyctl rdescribe $SID as $u: $seen (after ${i}s)"
    say "/proc/keys as $u: $(setpriv --reuid="$(id -u "$u")" --regid="$(id -g "$u")" --clear-groups \
        grep -i "^$(printf %08x "$SID") " /proc/keys || echo none)"
    case $seen in *revoked*) ;; *) fail "the ssh session keyring $SID was not revoked at logout" ;; esac
}

user_manager() {  # USER: the user manager's keyring from root (linger, systemd-run -M)
    local u=$1
    loginctl enable-linger "$u"
    say "systemd-run -M $u@ --user: $(timeout 120 systemd-run -M "$u@" --user --wait -P -q \
        keyctl rdescribe @s 2>&1)"
    say "user@$(id -u "$u").service KeyringMode=$(systemctl show -p KeyringMode --value "user@$(id -u "$u").service")"
    loginctl disable-linger "$u"
}
