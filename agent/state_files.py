"""The agent's small state documents, read and written one way.

Two kinds of file live in ``state_dir`` besides the outbox:

* **State documents** (``decisions.json``, ``production.json``): one JSON object with a
  ``schema`` and one mapping of entries, replaced whole and atomically. A document that is
  missing is empty; one that cannot be read, or is not what its schema says, is
  :class:`~trust.errors.StorageUnavailableError` — never "empty": an agent that forgot what
  it decided could decide it again and move a pointer back.
* **Content-addressed files** (``inputs/<sha256>.json``, ``evidence/<sha256>.json``): the RFC
  8785 canonical JSON of a document under the name of its SHA-256, so a replay finds the
  exact bytes a record pins; rewriting one is harmless.

OSError becomes :class:`~trust.errors.StorageUnavailableError`
(:class:`~trust.errors.StorageFullError` on a full disk), so the daemon retries the pass.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trust._internal.files import replace_file
from trust.canonical import Sha256, canonical_json, loads_object, sha256_hex
from trust.errors import FormatError, StorageFullError, StorageUnavailableError

__all__ = ["keep_json", "load_document", "save_document", "storage_error"]


def storage_error(path: Path, exc: OSError, what: str) -> StorageUnavailableError:
    """``exc`` on ``path`` as the typed error the daemon retries on."""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFullError(f"{path}: {what} ({reason})", hint="free disk space; the "
                                "agent retries on its next pass")
    return StorageUnavailableError(f"{path}: {what} ({reason})")


def load_document(path: Path, *, schema: str, key: str, what: str, refusal: str,
                  hint: str) -> dict[str, dict[str, Any]]:
    """The ``key`` mapping of the state document at ``path`` (``{}`` when there is none).

    Every value of the mapping must be an object. ``what`` names the document in a read
    error ("the decided versions"); ``refusal`` and ``hint`` say, for a damaged one, what
    the agent will not do and how to recover.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise storage_error(path, exc, f"cannot read {what}") from None
    try:
        doc = loads_object(data, what=str(path))
        entries = doc.get(key)
        if doc.get("schema") != schema or not isinstance(entries, dict) or any(
            not isinstance(v, dict) for v in entries.values()
        ):
            raise FormatError(f"{path}: not a {schema} document")
    except FormatError as exc:
        raise StorageUnavailableError(f"{exc.message}; {refusal}", hint=hint) from None
    return entries


def save_document(path: Path, *, schema: str, key: str, entries: Mapping[str, Any],
                  what: str) -> None:
    """Replace the state document at ``path`` whole (atomic, durable)."""
    data = canonical_json({"schema": schema, key: dict(entries)}) + b"\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_file(path, data)
    except OSError as exc:
        raise storage_error(path, exc, f"cannot save {what}") from None


def keep_json(directory: Path, doc: Mapping[str, Any], *, what: str) -> tuple[Path, Sha256]:
    """``doc`` as canonical JSON at ``directory/<sha256>.json``; its path and digest."""
    data = canonical_json(dict(doc))
    digest = Sha256(sha256_hex(data))
    path = directory / f"{digest}.json"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        replace_file(path, data)
    except OSError as exc:
        raise storage_error(path, exc, f"cannot save {what}") from None
    return path, digest
