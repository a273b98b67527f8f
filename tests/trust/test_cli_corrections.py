"""Issue 8 corrections to the trust CLI that are not a single bad-input row.

The refusals themselves are rows of ``tests/bad_input/test_trust_table.py``; here: what
``--force`` and ``--previous`` allow, that help reads as plain text, what a broken pipe means,
and that the shared writer never leaves a half-written or temporary file behind.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import io
import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

import trust.cli.key
from trust import keys
from trust.cli import _common
from trust.cli.main import HelpFormatter, main, rst_to_text
from trust.errors import UsageError
from trust.policy.bundle import PolicyBundle, load_bundle_file, sign_source
from trust.root import Role, RootMetadata, TrustRoot, load_envelope
from trust.timeutil import utcnow

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "policies" / "examples" / "model_governance"
WARDEN = Path(sys.executable).parent / "warden"

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    def _run(*argv: str) -> tuple[int, str, str]:
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        out, err = capsys.readouterr()
        return code, out, err

    return _run


def _key(name: str) -> keys.SigningKey:
    return keys.SigningKey.from_seed(hashlib.sha256(f"corrections-{name}".encode()).digest())


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, keys.SigningKey]:
    """r1, r2 (root v1), r3 (root v2 only), o1..o3 (policy), hub; root.json v1; b.bundle."""
    monkeypatch.chdir(tmp_path)
    ks = {n: _key(n) for n in ("r1", "r2", "r3", "o1", "o2", "o3", "hub")}
    for n, k in ks.items():
        keys.save_private(k, tmp_path / f"{n}.key")
    meta = RootMetadata(
        version=1,
        expires=utcnow() + timedelta(days=30),
        keys={k.key_id: k.public for k in ks.values()},
        roles={
            "root": Role((ks["r1"].key_id, ks["r2"].key_id), 2),
            "policy": Role(tuple(ks[n].key_id for n in ("o1", "o2", "o3")), 2),
            "hub": Role((ks["hub"].key_id,), 1),
        },
    )
    (tmp_path / "root.json").write_bytes(meta.envelope([ks["r1"], ks["r2"]]).to_json())
    (tmp_path / "b.bundle").write_bytes(sign_source(EXAMPLE, [ks["o1"]]).to_json())
    return ks


# --- item 19: --force, --previous, and keys that do count ----------------------------------


def test_root_sign_force_adds_an_outsider_signature_with_a_warning(run: Run, world) -> None:
    code, _, err = run("root", "sign", "root.json", "--key", "o1.key", "--force")
    assert code == 0, err
    assert re.search(rf"^warning: .*{world['o1'].key_id} is not in the 'root' role", err, re.M)
    assert world["o1"].key_id in load_envelope("root.json").signer_ids


def test_old_root_key_signs_a_rotation_only_with_previous(run: Run, world) -> None:
    code, _, err = run("root", "rotate", "root.json", "--root-key", "r2.key", "--root-key",
                       "r3.key", "--out", "root-v2.json", "--sign", "r1.key", "--sign", "r3.key")
    assert code == 0, err  # rotate knows the old root: r1 (v1 only) may sign
    code, _, err = run("root", "sign", "root-v2.json", "--key", "r1.key")
    assert code == 2 and "--previous" in err, err  # r1 is not a v2 root key
    code, _, err = run("root", "sign", "root-v2.json", "--key", "r2.key", "--previous",
                       "root.json")
    assert code == 0, err
    v1 = TrustRoot.load("root.json")
    assert v1.rotate(load_envelope("root-v2.json")).version == 2


def test_policy_cosign_with_a_policy_key_and_root(run: Run, world) -> None:
    code, out, err = run("policy", "cosign", "b.bundle", "--key", "o2.key", "--root", "root.json")
    assert code == 0 and "1 signature(s) added, 2 in total" in out, err
    bundle = PolicyBundle.from_envelope(load_bundle_file("b.bundle"), TrustRoot.load("root.json"))
    assert bundle.signers == {world["o1"].key_id, world["o2"].key_id}


def test_policy_cosign_force_with_an_outsider_key_warns(run: Run, world) -> None:
    code, _, err = run("policy", "cosign", "b.bundle", "--key", "r1.key", "--root", "root.json",
                       "--force")
    assert code == 0, err
    assert re.search(rf"^warning: .*{world['r1'].key_id} is not in the 'policy' role", err, re.M)
    code, _, err = run("policy", "cosign", "b.bundle", "--key", "o3.key", "--force")
    assert code == 0 and "NOT checked" in err, err
    assert set(load_bundle_file("b.bundle").signer_ids) == {
        world[n].key_id for n in ("o1", "r1", "o3")
    }


# --- item 21: group help is plain text -----------------------------------------------------

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
    formatter._width = 40
    text = HelpFormatter._fill_text(formatter, parser.description or "", 40, "")
    assert "Commands:\n  a    first\n  b    second" in text
    assert "Read it like this:\n\n    warden a --flag ``kept``" in text
    assert all(len(line) <= 40 for line in text.splitlines()[:3])
    epilog = HelpFormatter._fill_text(formatter, parser.epilog or "", 40, "")
    assert epilog == parser.epilog


# --- extra: a broken pipe is "the reader went away" only when it is stdout -------------------


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


# --- item 16: one output check, one atomic writer -------------------------------------------


def test_write_atomic_leaves_no_temporary_file_when_the_rename_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.bundle"
    target.write_bytes(b"old")

    def fail(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_common.os, "replace", fail)
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

    monkeypatch.setattr(keys.os, "write", disk_full)
    code, _, err = run("key", "generate", "--out", "officer.key")
    assert code == 2 and "officer.key: cannot write (No space left" in err, err
    assert list(tmp_path.iterdir()) == []
