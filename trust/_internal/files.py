"""Reading the files trust objects come from (errors name the file), and writing files whole."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from trust.errors import FormatError, WardenError

__all__ = ["fsync_dir", "read_file", "replace_file", "write_temp_beside"]


def read_file(
    path: str | Path, *, error: type[WardenError] = FormatError, noun: str = "file"
) -> bytes:
    """The bytes of ``path``; a missing or unreadable file raises ``error`` naming it
    (``"<path>: no such <noun>"``, ``"<path>: cannot read (<reason>)"``)."""
    p = Path(path)
    try:
        return p.read_bytes()
    except FileNotFoundError as exc:
        raise error(f"{p}: no such {noun}") from exc
    except OSError as exc:
        raise error(f"{p}: cannot read ({exc.strerror})") from exc


def write_temp_beside(path: Path, data: bytes, mode: int) -> Path:
    """A temporary file beside ``path`` holding all of ``data``, fsynced, with ``mode``.

    The caller renames or links it into place (so a reader never sees a half-written file,
    and a full disk leaves the old file as it was) and unlinks it on failure. ``OSError``
    passes through for the caller to word; nothing is left behind when it is raised here.
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:  # os.write may write less than asked
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def fsync_dir(path: Path) -> None:
    """Flush ``path``'s directory entry changes (a rename) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` whole and durably: temporary file beside it, fsync,
    rename, fsync of the directory. A reader sees the old content or the new, never a torn
    file; a crash or a full disk at any point leaves the old file as it was. ``OSError``
    passes through for the caller to word (nothing is left behind)."""
    tmp = write_temp_beside(path, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
