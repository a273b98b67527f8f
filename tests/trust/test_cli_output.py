"""What the trust CLI writes: help as plain text, a broken pipe told apart by where it came
from, and files written atomically (never half-written, never a temporary file left behind).

Regressions of issue 8, items 16 (one output check, one atomic writer) and 21 (group help
showed reStructuredText markup).
"""

from __future__ import annotations

import argparse
import errno
import io
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import trust.cli.key
from tests.bad_input._table import run_warden
from trust.cli import _common
from trust.cli.main import HelpFormatter, main, rst_to_text
from trust.errors import UsageError

REPO = Path(__file__).resolve().parents[2]
WARDEN = Path(sys.executable).parent / "warden"

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """``run(*argv)``: ``warden ARGV`` in-process -> (exit code, stdout, stderr)."""
    return lambda *argv: run_warden(argv, capsys)


# --- group help is plain text -----------------------------------------------------------

GROUPS = ("key", "root", "policy", "approval", "check", "profile", "agent", "hub")
RST = re.compile(r"``|:(?:class|mod|func|meth|attr|data|exc|obj|ref|doc):`|`_\b|\*\*\w")


@pytest.mark.parametrize("group", GROUPS)
def test_group_help_shows_no_restructuredtext(
    run: Run, group: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run(group, "--help")
    if code != 0 and "invalid choice" in _:
        pytest.skip(f"group {group!r} is not registered")
    assert code == 0
    assert not RST.search(out), out
    description = out.split("\n\n")[1]
    assert all(len(line) <= 80 for line in description.splitlines()), description


def test_rst_to_text() -> None:
    text = ("``warden root``: see :class:`~trust.root.TrustRoot`, :mod:`trust.approval` and "
            ":func:`the loader <trust.root.load_envelope>`; *and* **not** ``--sign``; "
            "test_* rules of *_test.rego files")
    assert rst_to_text(text) == (
        "warden root: see TrustRoot, trust.approval and the loader; and not --sign; "
        "test_* rules of *_test.rego files"
    )


def test_help_formatter_keeps_examples_and_tables_as_written() -> None:
    parser = argparse.ArgumentParser(
        prog="x", formatter_class=HelpFormatter,
        description="Intro with ``code`` that is long enough to be wrapped when the terminal "
        "is narrow, as it is here.\n\nCommands:\n  a    first\n  b    second\n\n"
        "Read it like this::\n\n    warden a --flag ``kept``\n",
        epilog="example:\n  warden a --very-long-flag value --another-long-flag value2 x",
    )
    formatter = parser._get_formatter()
    assert isinstance(formatter, HelpFormatter)
    formatter._width = 40
    text = HelpFormatter._fill_text(formatter, parser.description or "", 40, "")
    assert "Commands:\n  a    first\n  b    second" in text
    assert "Read it like this:\n\n    warden a --flag ``kept``" in text
    assert all(len(line) <= 40 for line in text.splitlines()[:3])
    epilog = HelpFormatter._fill_text(formatter, parser.epilog or "", 40, "")
    assert epilog == parser.epilog


# --- a broken pipe is "the reader went away" only when it is stdout -------------------


def test_reader_going_away_exits_0_quietly(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before warden writes a byte
    try:
        proc = subprocess.run(
            [str(WARDEN), "policy", "show", str(REPO / "policies" / "standard")],
            stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def _raise_child_pipe(args: argparse.Namespace) -> int:
    """A command whose child process went away: writing to its pipe raises EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        os.write(write_end, b"job\n")
    finally:
        os.close(write_end)
    return 0


def test_broken_pipe_to_a_child_is_an_error_not_success(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(trust.cli.key, "_generate", _raise_child_pipe)
    code = main(["key", "generate", "--out", "unused.key"])
    err = capsys.readouterr().err
    assert code != 0
    assert err.startswith("error: broken pipe") and "Traceback" not in err


def test_broken_pipe_to_a_child_with_a_live_stdout_pipe(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """stdout is a real pipe with a reader: the EPIPE came from elsewhere, so it is an error."""
    read_end, write_end = os.pipe()
    stdout = io.TextIOWrapper(io.FileIO(write_end, "w"), write_through=True)
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(trust.cli.key, "_generate", _raise_child_pipe)
    try:
        code = main(["key", "generate", "--out", "unused.key"])
    finally:
        monkeypatch.undo()
        stdout.close()
        os.close(read_end)
    assert code != 0
    assert "error: broken pipe" in capsys.readouterr().err


# --- one output check, one atomic writer ------------------------------------------------


def test_write_atomic_leaves_no_temporary_file_when_the_rename_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.bundle"
    target.write_bytes(b"old")

    def fail(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("trust.cli._common.os.replace", fail)
    with pytest.raises(UsageError, match=r"out\.bundle: cannot write \(No space left"):
        _common.write_atomic(target, b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bundle"]
    assert target.read_bytes() == b"old"


def test_write_atomic_replaces_and_sets_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    target.write_bytes(b"old")
    _common.write_atomic(target, b"new" * 100_000, mode=0o600)
    assert target.read_bytes() == b"new" * 100_000
    assert target.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


@pytest.mark.parametrize("bad", [".", "..", "", "sub", "sub/", "missing/x.json"])
def test_check_output_path_refuses_what_cannot_be_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    with pytest.raises(UsageError, match=r"^--input-out "):
        _common.check_output_path(bad, flag="--input-out")
    assert _common.check_output_path("sub/ok.json") == Path("sub/ok.json")


def test_key_file_is_never_left_half_written_when_the_disk_fills(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    def disk_full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("trust.keys.os.write", disk_full)
    code, _, err = run("key", "generate", "--out", "officer.key")
    assert code == 2 and "officer.key: cannot write (No space left" in err, err
    assert list(tmp_path.iterdir()) == []
