"""The files the checks need, read (and profiles written) at the I/O edge.

The check modules are pure; :func:`agent.checks.run.run_checks` and the ``warden
check`` / ``warden profile`` commands read through these helpers and pass bytes, text or
parsed documents in. Invariants: every unreadable, missing, non-UTF-8 or malformed file is a
one-line :class:`~trust.errors.DataError` / :class:`~trust.errors.FormatError` naming the
file, never a traceback; digests are streamed in 1 MiB blocks (constant memory).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.checks.documentation import card_from_text
from agent.checks.lineage import manifest_from_text
from trust.errors import DataError, FormatError

if TYPE_CHECKING:  # profiles pull in drift (SciPy): imported only when a profile is used
    from agent.checks.profile import ReferenceProfile

__all__ = [
    "sha256_file",
    "read_text_file",
    "load_manifest",
    "parse_model_card",
    "load_profile",
    "save_profile",
]

_BLOCK = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Lowercase hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while block := f.read(_BLOCK):
                h.update(block)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a file") from None
    return h.hexdigest()


def read_text_file(path: Path, what: str) -> str:
    """Read a small UTF-8 text file; DataError/FormatError naming the file, never a traceback."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: no such {what} file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a {what} file") from None
    except UnicodeDecodeError as exc:
        raise FormatError(
            f"{path}: {what} is not UTF-8 text (invalid byte at offset {exc.start})"
        ) from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None


def load_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a model manifest (YAML or JSON; see :mod:`agent.checks.lineage`)."""
    p = Path(path)
    return manifest_from_text(read_text_file(p, "manifest"), p)


def parse_model_card(path: str | os.PathLike[str]) -> str | dict[str, Any]:
    """Read a model card: Markdown text, or the mapping from a .yaml/.yml/.json file."""
    p = Path(path)
    return card_from_text(read_text_file(p, "model card"), p)


def load_profile(path: str | os.PathLike[str]) -> ReferenceProfile:
    """Read a reference profile file; FormatError naming the file if unreadable or bad."""
    from agent.checks.profile_format import profile_from_bytes

    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise FormatError(f"{p}: cannot read reference profile ({exc.strerror})") from exc
    return profile_from_bytes(data, what=str(p))


def save_profile(profile: ReferenceProfile, path: str | os.PathLike[str]) -> None:
    """Write ``profile`` to ``path`` as canonical JSON (the CLI writes atomically instead)."""
    from agent.checks.profile_format import profile_to_bytes

    Path(path).write_bytes(profile_to_bytes(profile))
