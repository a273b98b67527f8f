"""Output paths that are not regular files are refused before anything is replaced.

``write_atomic`` renames a temporary file over its target. Over a device, FIFO or socket that
swaps the special file for a plain one for everyone on the machine (as root, ``--out
/dev/null`` replaced the machine's /dev/null); over a symbolic link it replaces the link, not
the file it points to. Both are refused, naming the option and the path, and the target is
left as it was. (A FIFO stands in for a device here: the tests never touch /dev.)
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.bad_input._table import Case, assert_refused, run_warden

CASES = [
    Case("key-generate-out-fifo", ("key", "generate", "--out", "{fifo}"),
         r"--out .*fifo: not a regular file"),
    Case("key-generate-public-out-fifo",
         ("key", "generate", "--out", "{tmp}/new.key", "--public-out", "{fifo}"),
         r"--public-out .*fifo: not a regular file"),
    Case("key-generate-out-symlink", ("key", "generate", "--out", "{link}"),
         r"--out .*link: is a symbolic link"),
]


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_special_output_targets_are_refused_and_left_alone(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    real = tmp_path / "real.key"
    real.write_bytes(b"keep me\n")
    link = tmp_path / "link"
    link.symlink_to(real)
    argv = [a.format(fifo=fifo, link=link, tmp=tmp_path) for a in case.argv]
    code, _, err = run_warden(argv, capsys)
    assert_refused(case, code, err)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # still a FIFO
    assert link.is_symlink() and real.read_bytes() == b"keep me\n"
    assert not (tmp_path / "new.key").exists()
