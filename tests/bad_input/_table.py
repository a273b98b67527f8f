"""Shared shape of the bad-input tables (issue 8, items 15-22).

Each area (hub CLI, trust CLI, checks) keeps one table of :class:`Case` rows in its own
``test_*.py`` and one parametrized test over it. A row is a command a user could type and
what must come back: a non-zero exit, one ``error:`` line (plus an optional ``hint:``) that
contains ``expect``, and never a traceback. :func:`run_warden` runs the command in-process
(an unexpected exception fails the test — exactly a traceback in real life).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from trust.cli.main import main

__all__ = ["Case", "run_warden", "assert_refused"]


@dataclass(frozen=True)
class Case:
    """One bad input: ``argv`` (``{name}`` placeholders filled by the table's fixture)."""

    id: str
    argv: tuple[str, ...]
    expect: str  # a regular expression the error line must match (re.search)
    code: int = 2

    def param(self) -> object:
        return pytest.param(self, id=self.id)


def run_warden(argv: Sequence[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``warden ARGV`` in-process; return (exit code, stdout, stderr)."""
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse: usage errors exit 2 with a usage line
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    out, err = capsys.readouterr()
    return code, out, err


def assert_refused(case: Case, code: int, err: str) -> None:
    """The command failed with ``case.code`` and one clear line matching ``case.expect``."""
    assert "Traceback" not in err, err
    assert code == case.code, f"exit {code}, expected {case.code}; stderr: {err!r}"
    lines = [line for line in err.strip().splitlines() if not line.startswith("usage:")
             and not line.startswith("  ")]
    assert lines, f"nothing on stderr for {case.id}"
    first = lines[0]
    assert first.startswith("error: ") or ": error: " in first, err
    assert re.search(case.expect, err), f"{case.expect!r} not in {err!r}"
