"""Property-based, through real logins: odd user names and option words
give pam_keyinit.so's results, a clean log, and never a traceback."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ...pamlib import C_MODULE, Service, assert_same_as_c, line, pamtester, py_module

# Option words as /etc/pam.d can carry them: no white space, no '#'
# (comment), no brackets (argument quoting), no NUL.
WORD = st.text(
    st.characters(
        blacklist_categories=["Cs", "Cc", "Zs", "Zl", "Zp"], blacklist_characters="#[]\\\x00"
    ),
    min_size=1,
    max_size=30,
)
USER = st.one_of(
    st.text(
        st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
        min_size=1,
        max_size=300,
    ),
    st.sampled_from(["root", "pykt-gid", "a=b", "ünïcödé", "x" * 4000, "-", "root "]),
)
SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(user=USER, words=st.lists(WORD, max_size=4))
@example(user="Traceback", words=[])
def test_odd_users_and_words_match_c(tree, probe, users, tmp_path, user, words):
    args = " ".join(words)
    c_svc = Service([line("session", "required", C_MODULE, args), probe])
    py_svc = Service([line("session", "required", py_module(tree), args), probe])
    try:
        theirs = pamtester(c_svc.name, user, ["open_session", "close_session"])
        ours = pamtester(py_svc.name, user, ["open_session", "close_session"], capture_dir=tmp_path)
    finally:
        c_svc.close()
        py_svc.close()
    assert_same_as_c(ours, theirs, py_svc.name, c_svc.name)
    # the user's name, quoted as the log lines quote it, may itself say
    # "Traceback" (Hypothesis tried that one)
    text = ours.log_text().replace(f'"{user}"', '"USER"')
    assert "Traceback" not in text and "internal error" not in text, text
    assert all(e["facility"] == 10 for e in ours.logs)
