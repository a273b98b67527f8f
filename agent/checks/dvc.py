"""DVC lineage: recompute the hashes a ``.dvc`` file or a ``dvc.lock`` records, as DVC does.

A model manifest may name the DVC pointer of its training data (``training_data.dvc``, or a
``training_data.source`` that is a local ``.dvc``/``dvc.lock`` path; see
:mod:`agent.checks.lineage`). :func:`verify_pointer` reads the pointer, recomputes the MD5 of
every entry it checks from the files on disk and returns the ``lineage.dvc`` evidence object::

    {"pointer": "train.csv.dvc",            # the pointer's file name only
     "outs": [{"path": "train.csv",         # relative to the pointer's directory, POSIX
               "expected_md5": "<hex>" | "<hex>.dir" | null,
               "actual_md5": "<hex>" | "<hex>.dir" | null,
               "verified": true | false,
               "error": "missing" | "unreadable" | "unsupported" | "not_in_pointer",  # optional
               "reason": "<one line, names files only>"}],                           # optional
     "verified": true | false,              # every checked entry verified (and there was one)
     "error": "missing"}                    # optional: the pointer file itself is absent

Which entries are checked: every ``outs`` entry of a ``.dvc`` file; every ``deps`` and
``outs`` entry of every stage of a ``dvc.lock``. When the caller passes ``only`` (the
manifest's ``training_data.path``), only the entries that are that path, or a tracked
directory holding it, are checked — and there must be one (else one ``not_in_pointer``
entry). An entry repeated across stages (one stage's output, another's dependency) is checked
once per recorded hash.

How DVC hashes (dvc-data 3.x, ``dvc_data/hashfile``; reproduced here because the agent must
not import DVC at run time — it is a dev extra only):

* a file: the MD5 of its raw bytes (``hash: md5``, DVC 3);
* a directory: ``<md5>.dir``, the MD5 of ``json.dumps(listing, sort_keys=True)`` encoded as
  UTF-8 (``Tree.as_bytes``; default separators, ASCII escapes), where ``listing`` is
  ``[{"md5": <file md5>, "relpath": <POSIX path inside the directory>}, ...]`` sorted by
  ``relpath`` (``Tree.as_list``). Files are found as DVC's ``os.walk`` finds them (symbolic
  links to directories are not followed; links to files are hashed through), without DVC's
  default ignores (``.git``, ``.hg``, ``.dvc`` directories, a ``.git`` file) and without
  nested DVC repositories (a sub-directory holding ``.dvc``). Empty directories add nothing.
* a legacy DVC 2.x entry (no ``hash:`` key): ``md5-dos2unix`` — read in 1 MiB blocks, a block
  whose first 512 bytes look like text (no NUL, at most 30% outside printable ASCII and
  ``\\n\\r\\t\\f\\b``) has ``\\r\\n`` replaced by ``\\n`` before hashing. That is how DVC 3
  recomputes (and so verifies) DVC 2 hashes; DVC 2 itself decided "text" once per file from
  its first 512 bytes, so for a file over 1 MiB whose later blocks differ in kind from the
  first the two can disagree. Such a file shows as a mismatch (never a false pass); re-adding
  it with DVC 3 removes the ambiguity. The ``.dir`` listing is hashed as plain MD5 in both
  versions (its JSON text holds no ``\\r\\n``).

Refused as not verifiable offline (``error: unsupported``, never a pass): entries without an
``md5`` (``etag``/``checksum`` of remote storage), external outputs (absolute paths, URLs),
cloud-versioned directories (a ``files:`` listing), a stage whose ``wdir`` in ``dvc.yaml`` is
templated, and tracked directories under a ``.dvcignore`` that holds patterns (DVC's ignore
rules are not reproduced: an ignored file would change the listing). A garbled pointer (bad
YAML, no ``outs``, an entry without ``path`` or with a malformed ``md5``, an unknown ``hash``
name, a ``dvc.lock`` not in schema ``'2.0'``) is a :class:`~trust.errors.FormatError` naming
the file and the field.

Invariants: files are read in 1 MiB blocks (constant memory; a directory listing holds one
name and digest per file); a FIFO, socket or device is never opened for reading (refused as
``unreadable``); nothing but names and digests enters the evidence; MD5 here is DVC's
content address, compared for lineage consistency — it is no integrity proof against an
adversary (``training_data.sha256`` is), so it never stands in for ``data_sha256``.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from agent.checks.files import read_text_file
from trust import strict_yaml
from trust.errors import CheckError, DataError, FormatError

__all__ = [
    "DvcEntry",
    "DvcPointer",
    "LOCK_NAME",
    "POINTER_SUFFIX",
    "dvc_md5",
    "is_pointer_name",
    "load_pointer",
    "md5_file",
    "md5_tree",
    "pointer_from_text",
    "stage_wdirs_from_text",
    "verify_pointer",
]

POINTER_SUFFIX = ".dvc"
LOCK_NAME = "dvc.lock"
_PIPELINE_NAME = "dvc.yaml"
_BLOCK = 1 << 20  # dvc-data's fobj_md5 chunk size; md5-dos2unix decides "text" per block
_TEXT_PROBE = 512  # dvc_data.hashfile.istextfile.DEFAULT_CHUNK_SIZE
_TEXT_CHARS = bytes(range(32, 127)) + b"\n\r\t\f\b"
_MD5 = re.compile(r"[0-9a-f]{32}(\.dir)?")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# DVC's default ignore patterns (dvc/ignore.py: ".hg/", ".git/", ".git", ".dvc/").
_IGNORED_DIRS = frozenset({".git", ".hg", ".dvc"})
_IGNORED_FILES = frozenset({".git"})
_DVCIGNORE = ".dvcignore"


def is_pointer_name(name: str) -> bool:
    """Whether ``name`` (a path's last component) is a ``.dvc`` file or a ``dvc.lock``."""
    base = PurePath(name).name
    return base == LOCK_NAME or (base.endswith(POINTER_SUFFIX) and base != POINTER_SUFFIX)


@dataclass(frozen=True)
class DvcEntry:
    """One ``outs``/``deps`` entry of a pointer, as recorded.

    ``path`` is POSIX and relative to the pointer's directory (``wdir`` applied, normalised;
    an external output keeps its text as written); ``md5`` is the recorded hash, lowercase,
    ``None`` when none is recorded; ``legacy`` means DVC 2.x ``md5-dos2unix``;
    ``unsupported`` says why the entry cannot be verified offline (``None``: it can).
    """

    path: str
    md5: str | None
    legacy: bool
    unsupported: str | None = None


@dataclass(frozen=True)
class DvcPointer:
    """A parsed ``.dvc`` file or ``dvc.lock``: its path and its entries, in file order."""

    path: Path
    entries: tuple[DvcEntry, ...]


# --- parsing (pure) ---------------------------------------------------------------------------


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise FormatError(f"{where} must be a mapping, got {type(value).__name__}")
    return value


def _entry(raw: Any, where: str, wdir: str, unsupported: str | None) -> DvcEntry:
    item = _mapping(raw, where)
    path = item.get("path")
    if not isinstance(path, str) or not path:
        raise FormatError(f"{where}.path must be a non-empty string, got {path!r}")
    hash_name = item.get("hash")
    if hash_name is not None and hash_name != "md5":
        raise FormatError(f"{where}.hash is {hash_name!r}; DVC records 'md5' (or, before "
                          "DVC 3, no hash key)")
    md5 = item.get("md5")
    if md5 is not None:
        if not isinstance(md5, str) or not _MD5.fullmatch(md5.strip().lower()):
            raise FormatError(f"{where}.md5 must be 32 hex digits (plus '.dir' for a "
                              f"directory), got {md5!r}", hint="quote the hash in YAML")
        md5 = md5.strip().lower()
    external = _URL.match(path) is not None or posixpath.isabs(path)
    rel = path if external else posixpath.normpath(posixpath.join(wdir, path))
    if unsupported is None:
        if external:
            unsupported = f"external output {path} is not verified"
        elif item.get("files") is not None:
            unsupported = f"{rel} is a cloud-versioned directory (a 'files' listing)"
        elif md5 is None:
            other = next((k for k in ("etag", "checksum") if item.get(k) is not None), None)
            unsupported = (f"{rel} records no md5" + (f" (only {other})" if other else ""))
    return DvcEntry(path=rel, md5=md5, legacy=hash_name is None, unsupported=unsupported)


def _entries(value: Any, where: str, wdir: str, unsupported: str | None) -> list[DvcEntry]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise FormatError(f"{where} must be a list, got {type(value).__name__}")
    return [_entry(raw, f"{where}[{i}]", wdir, unsupported) for i, raw in enumerate(value)]


def _wdir(value: Any, where: str) -> str:
    if value is None:
        return "."
    if not isinstance(value, str) or not value:
        raise FormatError(f"{where} must be a non-empty string, got {value!r}")
    return value


def stage_wdirs_from_text(text: str, path: PurePath) -> dict[str, str]:
    """Each stage's ``wdir`` from a ``dvc.yaml`` (stages without one are left out).

    A ``foreach``/``matrix`` stage's ``wdir`` (under ``do:`` or at its top) applies to every
    generated stage (``name@key``); it may be templated (``${...}``), which the caller
    refuses as unsupported. FormatError naming the file if it is not a pipeline file.
    """
    doc = strict_yaml.load(text, source=str(path))
    if doc is None:
        return {}
    stages = _mapping(doc, str(path)).get("stages")
    if stages is None:
        return {}
    out: dict[str, str] = {}
    for name, raw in _mapping(stages, f"{path}: stages").items():
        stage = _mapping(raw, f"{path}: stages.{name}")
        body = stage.get("do") if isinstance(stage.get("do"), Mapping) else stage
        assert isinstance(body, Mapping)
        if body.get("wdir") is not None:
            out[str(name)] = _wdir(body.get("wdir"), f"{path}: stages.{name}.wdir")
    return out


def pointer_from_text(
    text: str, path: Path, *, stage_wdirs: Mapping[str, str] | None = None
) -> DvcPointer:
    """Parse a ``.dvc`` file or ``dvc.lock`` (chosen by ``path``'s name); nothing is read.

    ``stage_wdirs`` (for a ``dvc.lock``) maps stage names to the ``wdir`` its ``dvc.yaml``
    declares: the lock's paths are relative to it. FormatError naming ``path`` and the field
    when the text is not a pointer DVC could have written.
    """
    doc = strict_yaml.load(text, source=str(path))
    what = str(path)
    if path.name == LOCK_NAME:
        top = _mapping(doc, what)
        if str(top.get("schema")) != "2.0":
            raise FormatError(f"{what}: schema is {top.get('schema')!r}, expected '2.0'",
                              hint="a DVC 1.x lock file: run `dvc repro` with DVC 2 or 3")
        entries: list[DvcEntry] = []
        for name, raw in _mapping(top.get("stages") or {}, f"{what}: stages").items():
            stage = _mapping(raw, f"{what}: stages.{name}")
            wdir = (stage_wdirs or {}).get(str(name).split("@", 1)[0], ".")
            unsupported = (f"stage {name}'s wdir {wdir!r} in {_PIPELINE_NAME} is templated"
                           if "${" in wdir else None)
            for key in ("deps", "outs"):
                entries += _entries(stage.get(key), f"{what}: stages.{name}.{key}", wdir,
                                    unsupported)
        if not entries:
            raise FormatError(f"{what}: no stage records any deps or outs")
        return DvcPointer(path, tuple(entries))
    top = _mapping(doc, what)
    outs = top.get("outs")
    if not isinstance(outs, list) or not outs:
        raise FormatError(f"{what}: outs must be a non-empty list, got {outs!r}",
                          hint="a .dvc file made by `dvc add` lists what it tracks under outs")
    wdir = _wdir(top.get("wdir"), f"{what}: wdir")
    return DvcPointer(path, tuple(_entries(outs, f"{what}: outs", wdir, None)))


# --- reading ----------------------------------------------------------------------------------


class _Missing(DataError):
    """The file or directory an entry names does not exist."""


class _Unsupported(CheckError):
    """The entry is valid DVC but cannot be recomputed here."""


def load_pointer(path: Path) -> DvcPointer:
    """Read and parse a pointer (and, for a ``dvc.lock``, the ``dvc.yaml`` beside it).

    A missing pointer is a ``_Missing`` :class:`~trust.errors.DataError`; unreadable or
    non-UTF-8 text a DataError/FormatError naming the file.
    """
    text = _read_text(path, "DVC pointer")
    wdirs: dict[str, str] = {}
    if path.name == LOCK_NAME:
        pipeline = path.with_name(_PIPELINE_NAME)
        if pipeline.is_file():
            wdirs = stage_wdirs_from_text(_read_text(pipeline, "DVC pipeline"), pipeline)
    return pointer_from_text(text, path, stage_wdirs=wdirs)


def _read_text(path: Path, what: str) -> str:
    """:func:`~agent.checks.files.read_text_file`, with a missing file as :class:`_Missing`
    (a lineage violation of its own, not an unreadable pointer)."""
    if not os.path.lexists(path):
        raise _Missing(f"{path}: no such {what} file")
    return read_text_file(path, what)


def _is_text(block: bytes) -> bool:
    """dvc_data.hashfile.istextfile.istextblock, exactly."""
    if not block:
        return True
    if b"\x00" in block:
        return False
    return len(block.translate(None, _TEXT_CHARS)) / len(block) <= 0.30


def md5_file(path: str | os.PathLike[str], *, legacy: bool = False) -> str:
    """DVC's MD5 of a regular file (``legacy``: DVC 2's ``md5-dos2unix``), read in 1 MiB blocks.

    DataError naming the file if it is missing, unreadable or not a regular file (a FIFO is
    never read: it is opened non-blocking and refused on ``fstat``).
    """
    h = hashlib.md5(usedforsecurity=False)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (FileNotFoundError, NotADirectoryError):
        raise _Missing(f"{path}: no such file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise DataError(f"{path}: not a regular file")
        try:
            while block := f.read(_BLOCK):
                if legacy and _is_text(block[:_TEXT_PROBE]):
                    block = block.replace(b"\r\n", b"\n")
                h.update(block)
        except OSError as exc:
            raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return h.hexdigest()


def _raise(exc: OSError) -> None:
    raise exc


def _tree_files(top: str) -> Iterator[tuple[str, str]]:
    """``(relpath, full path)`` of every file DVC would put in ``top``'s listing."""
    for root, dirs, files in os.walk(top, onerror=_raise):
        # DVC's default ignores, and nested DVC repositories (dvc/ignore.py, _update_sub_repo)
        dirs[:] = [d for d in dirs if d not in _IGNORED_DIRS
                   and not os.path.lexists(os.path.join(root, d, ".dvc"))]
        rel = "" if root == top else root[len(top) + 1:].replace(os.sep, "/") + "/"
        for name in files:
            if name in _IGNORED_FILES:
                continue
            if name == _DVCIGNORE:
                raise _Unsupported(f"a {_DVCIGNORE} inside the tracked directory ({rel}{name})")
            yield rel + name, os.path.join(root, name)


def md5_tree(path: str | os.PathLike[str], *, legacy: bool = False) -> str:
    """DVC's ``<md5>.dir`` of a directory (see the module docstring for the listing)."""
    top = os.path.normpath(os.fspath(path))
    listing: list[dict[str, str]] = []
    try:
        for rel, full in _tree_files(top):
            try:
                listing.append({"md5": md5_file(full, legacy=legacy), "relpath": rel})
            except _Missing:  # listed a moment ago: a dangling link, or removed meanwhile
                raise DataError(f"{full}: a broken link, or removed while hashing") from None
    except (FileNotFoundError, NotADirectoryError) as exc:
        if os.path.normpath(exc.filename or top) == top:
            raise _Missing(f"{top}: no such directory") from None
        raise DataError(f"{exc.filename}: removed while hashing") from None
    except OSError as exc:
        raise DataError(f"{exc.filename or top}: cannot list ({exc.strerror or exc})") from None
    listing.sort(key=lambda e: e["relpath"])
    # Exactly dvc_data.hashfile.tree.Tree.as_bytes (json's default separators and escapes).
    data = json.dumps(listing, sort_keys=True).encode("utf-8")
    return hashlib.md5(data, usedforsecurity=False).hexdigest() + ".dir"


def dvc_md5(path: str | os.PathLike[str], *, legacy: bool = False) -> str:
    """DVC's hash of ``path`` as it is on disk: :func:`md5_tree` for a directory, else
    :func:`md5_file`."""
    if os.path.isdir(path):
        return md5_tree(path, legacy=legacy)
    return md5_file(path, legacy=legacy)


# --- verification -----------------------------------------------------------------------------


def _ignore_rules(directory: Path, pointer_dir: Path) -> Path | None:
    """The first ``.dvcignore`` holding a pattern that could apply to ``directory``'s files.

    DVC reads ``.dvcignore`` files from the repository root (the nearest ancestor holding a
    ``.dvc/`` directory) down; without a repository in sight (a pointer copied beside its
    data), the directories from ``directory`` up to the pointer's are searched.
    """
    chain = [Path(os.path.normpath(d)) for d in (directory, *directory.parents)]
    root = next((d for d in chain if (d / ".dvc").is_dir()), None)
    last = root or Path(os.path.normpath(pointer_dir))
    if last not in chain:
        chain, last = chain[:1], chain[0]
    for d in chain:
        rules = d / _DVCIGNORE
        if rules.is_file():
            text = _read_text(rules, "DVC ignore")
            if any(line.strip() and not line.lstrip().startswith("#")
                   for line in text.splitlines()):
                return rules
        if d == last:
            break
    return None


def _check(entry: DvcEntry, base: Path, cache: dict[tuple[str, bool], str]) -> dict[str, Any]:
    out: dict[str, Any] = {"path": entry.path, "expected_md5": entry.md5, "actual_md5": None,
                           "verified": False}
    try:
        if entry.unsupported is not None:
            raise _Unsupported(entry.unsupported)
        target = base / entry.path
        key = (os.path.normpath(target), entry.legacy)
        if key not in cache:
            if target.is_dir():
                rules = _ignore_rules(target.parent, base)
                if rules is not None:
                    raise _Unsupported(f"{entry.path} is under {_DVCIGNORE} rules "
                                       f"({os.path.relpath(rules, base)}), not reproduced here")
            cache[key] = dvc_md5(target, legacy=entry.legacy)
        out["actual_md5"] = cache[key]
        out["verified"] = cache[key] == entry.md5
    except _Missing:
        out.update(error="missing", reason=f"{entry.path} does not exist")
    except _Unsupported as exc:
        out.update(error="unsupported", reason=exc.message)
    except DataError as exc:
        # The message names the node's absolute path; the evidence names the entry's only.
        reason = exc.message.replace(os.path.normpath(base / entry.path), entry.path)
        out.update(error="unreadable", reason=reason)
    return out


def _selected(entry: DvcEntry, base: Path, only: Path) -> bool:
    if entry.unsupported is not None and (_URL.match(entry.path) or posixpath.isabs(entry.path)):
        return False
    tracked = os.path.realpath(base / entry.path)
    wanted = os.path.realpath(only)
    return wanted == tracked or wanted.startswith(tracked.rstrip(os.sep) + os.sep)


def verify_pointer(path: Path, *, only: Path | None = None) -> dict[str, Any]:
    """The ``lineage.dvc`` evidence for the pointer at ``path`` (see the module docstring).

    ``only``: check just the entries that are this path or a directory holding it. A missing
    pointer is evidence (``error: missing``), not an exception; a garbled one raises
    FormatError naming it, an unreadable one DataError.
    """
    evidence: dict[str, Any] = {"pointer": path.name, "outs": [], "verified": False}
    try:
        pointer = load_pointer(path)
    except _Missing:
        evidence["error"] = "missing"
        return evidence
    base = path.parent
    entries = list(pointer.entries)
    if only is not None:
        entries = [e for e in entries if _selected(e, base, only)]
        if not entries:
            rel = Path(os.path.relpath(os.path.abspath(only), os.path.abspath(base))).as_posix()
            evidence["outs"] = [{"path": rel, "expected_md5": None, "actual_md5": None,
                                 "verified": False, "error": "not_in_pointer",
                                 "reason": f"{path.name} has no entry for {rel}"}]
            return evidence
    seen: set[tuple[str, str | None, bool]] = set()
    cache: dict[tuple[str, bool], str] = {}
    outs: list[dict[str, Any]] = []
    for entry in entries:
        key = (entry.path, entry.md5, entry.legacy)
        if key in seen:
            continue
        seen.add(key)
        outs.append(_check(entry, base, cache))
    evidence["outs"] = outs
    evidence["verified"] = bool(outs) and all(o["verified"] for o in outs)
    return evidence
