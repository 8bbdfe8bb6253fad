"""kernel.py and keyinit's credential switch (take, restore) against the real kernel."""

from __future__ import annotations

import ctypes
import subprocess

from pam_pykeyinit import kernel

from ..conftest import require_root


def test_types_match_the_ctypes_package():
    assert ctypes.sizeof(kernel.c_long) == ctypes.sizeof(ctypes.c_long)
    assert kernel.c_long._type_ == ctypes.c_long._type_
    assert ctypes.sizeof(ctypes.c_int) == 4  # pthread_key_t and error numbers: INT_MASK
    buf = kernel.char_buffer(7)
    assert ctypes.sizeof(buf) == ctypes.sizeof(ctypes.c_char * 7)
    assert type(buf)._type_._type_ == ctypes.c_char._type_
    lib = ctypes.CDLL(None, use_errno=True)
    assert kernel.CFunction._flags_ == lib._FuncPtr._flags_


def test_thread_slots_are_each_os_threads_own():
    """kernel.thread_slots on the real libc: a thread reads only what it set,
    a new thread starts at 0, the largest value a uid + 1 needs survives,
    and delete() gives the keys back (more keys than PTHREAD_KEYS_MAX, 1024,
    are made and freed one after the other)."""
    import threading

    slots = kernel.thread_slots(2)
    slots.set(0, 2**32 - 1)
    slots.set(1, 7)
    seen: list[tuple[int, int]] = []

    def other() -> None:
        seen.append((slots.get(0), slots.get(1)))
        slots.set(1, 9)
        seen.append((slots.get(0), slots.get(1)))

    for _ in range(2):  # the second thread may reuse the first one's stack
        worker = threading.Thread(target=other)
        worker.start()
        worker.join()
    assert seen == [(0, 0), (0, 9), (0, 0), (0, 9)]
    assert (slots.get(0), slots.get(1)) == (2**32 - 1, 7)
    slots.delete()
    assert slots.keys == []
    for _ in range(1100):
        kernel.thread_slots(1).delete()


def test_this_machine_has_a_checked_table():
    assert kernel.table_for(kernel.current_abi()) is not None


def test_keyctl_reads_the_same_session_keyring_as_keyctl_1(child):
    got = child("""
        from pam_pykeyinit import kernel
        k = kernel.load()
        print(json.dumps(k.get_keyring_id(kernel.KEY_SPEC_SESSION_KEYRING)))
    """)
    out = subprocess.run(["keyctl", "show", "@s"], capture_output=True, text=True).stdout
    assert str(got) == out.splitlines()[1].split()[0]


def test_failures_carry_call_and_errno(child):
    got = child("""
        from pam_pykeyinit import kernel
        try:
            kernel.load().revoke(1)
        except kernel.KernelError as e:
            print(json.dumps([e.call, e.arguments, e.errno_name, str(e)]))
    """)
    assert got == [
        "keyctl",
        [3, 1],
        "ENOKEY",
        "keyctl(KEYCTL_REVOKE, 1) failed: ENOKEY (Required key not available)",
    ]


def test_join_and_link_make_a_user_keyring_link(child):
    got = child("""
        import subprocess
        from pam_pykeyinit import kernel
        k = kernel.load()
        serial = k.join_session_keyring()
        k.link(kernel.KEY_SPEC_USER_KEYRING, kernel.KEY_SPEC_SESSION_KEYRING)
        show = subprocess.run(["keyctl", "rdescribe", "@s"], capture_output=True, text=True)
        links = subprocess.run(["keyctl", "rlist", "@s"], capture_output=True, text=True)
        names = [subprocess.run(["keyctl", "rdescribe", i], capture_output=True,
                 text=True).stdout.strip().rsplit(";", 1)[-1] for i in links.stdout.split()]
        d = k.describe(serial)
        print(json.dumps([serial == k.get_keyring_id(kernel.KEY_SPEC_SESSION_KEYRING),
                          show.stdout.strip(), names,
                          [d.type, d.uid, d.gid, d.perm, d.description],
                          k.read_keyring(serial) == [int(i) for i in links.stdout.split()]]))
    """)
    import os

    assert got[0] is True
    assert got[1].endswith(";_ses") and got[1].startswith(f"keyring;{os.getuid()};")
    assert got[2] == [f"_uid.{os.getuid()}"]
    # KEYCTL_DESCRIBE and KEYCTL_READ agree with keyctl(1)
    kind, uid, gid, perm, text = got[1].split(";")
    assert got[3] == [kind, int(uid), int(gid), int(perm, 16), text]
    assert got[4] is True


THREAD_WATCH = """
    import os, threading, time
    from pam_pykeyinit import kernel
    from pam_pykeyinit.keyinit import REAL, restore, take
    k = kernel.load()
    seen, stop = set(), threading.Event()
    def watch():
        while not stop.is_set():
            seen.add((os.getresuid(), os.getresgid()))
    t = threading.Thread(target=watch)
    t.start()
    time.sleep(0.01)
    for _ in range(50):
        CHANGE
    stop.set(); t.join()
    print(json.dumps(sorted(seen)))
"""


def test_switches_change_only_the_calling_thread(child):
    require_root()
    code = THREAD_WATCH.replace(
        "CHANGE",
        """
entry, moved = k.thread_ids(), []
take(k, entry, REAL, 47011, 47099, moved)
assert os.getresuid()[0] == 47011
time.sleep(0.002)  # hold the switch long enough to be seen
failures = []
restore(k, entry, moved, failures)
assert failures == []
    """.strip().replace("\n", "\n        "),
    )
    assert child(code) == [[[0, 0, 0], [0, 0, 0]]]


def test_the_watch_does_see_glibc_process_wide_changes(child):
    # The same watch against os.setresuid (glibc's broadcast to every
    # thread): proves the test above can fail.
    require_root()
    code = THREAD_WATCH.replace(
        "CHANGE", "os.setresuid(47011, 0, 0); time.sleep(0.002); os.setresuid(0, 0, 0)"
    )
    assert [[47011, 0, 0], [0, 0, 0]] in child(code)


def test_switch_restores_saved_and_fs_ids_exactly(child):
    require_root()
    got = child("""
        import os
        from pam_pykeyinit import kernel
        from pam_pykeyinit.keyinit import EFFECTIVE, restore, take
        k = kernel.load()
        k.setresgid(0, 0, 4242); k.setfsgid(4343)
        k.setresuid(0, 0, 4141); k.setfsuid(4444)
        before = (os.getresuid(), os.getresgid(), k.setfsuid(-1), k.setfsgid(-1))
        entry, moved = k.thread_ids(), []
        take(k, entry, EFFECTIVE, 47011, 47099, moved)
        during = (os.getresuid(), os.getresgid())
        failures = []
        restore(k, entry, moved, failures)
        after = (os.getresuid(), os.getresgid(), k.setfsuid(-1), k.setfsgid(-1))
        print(json.dumps([before, during, after, failures]))
    """)
    before, during, after, failures = got
    assert during[0][1] == 47011 and during[1][1] == 47099
    assert after == before and failures == []
    assert before == [[0, 0, 4141], [0, 0, 4242], 4444, 4343]
