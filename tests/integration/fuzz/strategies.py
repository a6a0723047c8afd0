"""Values to throw at the public API: odd strings, wrong types, unknown ids, hostile paths.

Every strategy here is safe to run as root on the test machine: commands and code run in a jail,
and every local path a call may *write* stays inside the test's own folder.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

# Any character, lone surrogates and NUL included (Hypothesis leaves surrogates out by default).
ANY_CHAR = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
odd_text = st.one_of(
    st.text(ANY_CHAR, max_size=40),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "a\x00b",
            "\ud800",
            "x\udfffy",
            "🙂" * 3,
            "\u202e\u200b",
            "\n\r\t",
            "../../etc/passwd",
            "/etc/passwd",
            "~",
            "%s%n",
            "${HOME}",
            "'; DROP TABLE jobs; --",
        ]
    ),
    st.just("a" * 20_000),  # long (longer ones: test_long_inputs)
)
big_ints = st.sampled_from([-(2**70), -1, 0, 2**31, 2**63, 2**70])
odd_numbers = st.one_of(
    big_ints,
    st.integers(min_value=-10, max_value=10),
    st.sampled_from([float("nan"), float("inf"), float("-inf"), -0.0, 0.5, 1e308, -1e-9]),
)
wrong_types = st.one_of(
    st.none(),
    st.booleans(),
    odd_numbers,
    st.binary(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.just(object()),
    st.just(Path("/tmp")),
)
anything: st.SearchStrategy[Any] = st.one_of(odd_text, wrong_types)

unknown_ids = st.one_of(
    st.just("i" + "0" * 19),
    st.from_regex(r"\A[a-z0-9]{20}\Z"),
    st.sampled_from(["../..", "*", "e2bq:jobs:*", "default", "i" * 5000]),
)


def sandbox_ids(real: str) -> st.SearchStrategy[Any]:
    """``real`` (an existing sandbox), the default (None), unknown ids, and anything else."""
    return st.one_of(st.just(real), st.none(), unknown_ids, anything)


# Code and commands: a few chosen ones, then odd text made harmless (a string literal, an echo).
codes = st.one_of(
    st.sampled_from(
        [
            "1 + 1",
            "print('hi')",
            "raise ValueError('x')",
            "import sys; sys.exit(3)",
            "\x00",
            "x = ",
            "float('nan')",
            "b'\\xff'",
            "{'a': float('inf')}",
            "print('\\ud800')",
            "import os; os._exit(0)",
            "display({'text/plain': '\\x00'}, raw=True)",
        ]
    ),
    odd_text.map(lambda text: f"# {text!r}\n{text!r}"),
    odd_text,
)
commands = st.one_of(
    st.sampled_from(
        [
            "true",
            "false",
            "exit 3",
            "echo a\x00b",
            "cat ../../etc/passwd",
            "printf '\\xff\\xfe'",
            "echo $'\\ud800'",
            "kill -9 $$",
            "ulimit -a",
            "cd /nonexistent",
            "\x00",
        ]
    ),
    odd_text.map(lambda text: "echo " + shlex.quote(text.replace("\x00", ""))),
    odd_text,
)


def local_paths(folder: Path) -> st.SearchStrategy[Any]:
    """Paths a call may write to: always inside ``folder`` (odd names, missing folders, the
    folder itself), or not a path at all."""
    names = st.text(ANY_CHAR, min_size=1, max_size=30).map(lambda n: n.replace("/", "_"))
    return st.one_of(
        st.none(),
        names.map(lambda name: str(folder / name)),
        st.sampled_from(
            [
                str(folder),
                str(folder / "missing" / "x.png"),
                str(folder / "sub" / ".." / "ok.bin"),
                str(folder / ("n" * 300)),
                str(folder / "a\x00b"),
                str(folder / "\ud800"),
            ]
        ),
        wrong_types,
    )
