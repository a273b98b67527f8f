"""The model registry the agent watches: a small :class:`Registry` interface and the
directory implementation, :class:`DirectoryRegistry`.

Layout under the registry root (the ``models/`` directory)::

    <name>/<version>/manifest.yaml     written by the publisher (trainer, CI)
    <name>/<version>/<artefact>        .onnx, .skops, .joblib, or a predictions .csv/.parquet
    <name>/<version>/READY             written LAST by the publisher; its content is ignored
    <name>/stages/<stage>              one line, the version at that stage; written by the agent
    <name>/annotations/<version>.json  the agent's notes on a version (:meth:`Registry.annotate`)

**Completeness is the ``READY`` marker, not "manifest last".** A manifest is a few hundred
bytes and can be complete while a multi-gigabyte artefact is still being copied beside it
(``cp``, ``rsync``, an object-store sync that does not order files): "the manifest exists"
would then let the agent hash and load half an artefact. An empty ``READY`` file created
after everything else has finished copying is a single, unambiguous step a publisher can take
with any tool (``touch READY``). A version directory without ``READY`` is simply not listed —
it is being written, not broken. Once ``READY`` exists the directory must not change; when
the manifest declares ``artifact.sha256`` every :meth:`Registry.read` recomputes the digest
and refuses a mismatch, so a later edit is detected rather than trusted.

The manifest is the lineage manifest of :mod:`agent.checks.lineage`, read and type-checked by
:func:`agent.checks.files.load_manifest` (no second parser). The registry's own fields live
under ``model:``, beside ``name`` and ``version``, where the lineage parser leaves them to the
registry::

    model: {name: credit-risk, version: "1.4.0", owner: risk-team, framework: sklearn,
            intended_use: "retail credit scoring", target_stage: production,
            features: [age, income, ...]}
    artifact: {path: model.onnx, sha256: "<hex>"}
    training_data: {source: s3://bucket/train.parquet, sha256: "<hex>"}
    code: {commit: "<git sha>"}
    parameters: {...}
    trained_at: 2025-01-31T12:00:00Z

``artifact.path`` and ``model.target_stage`` are required; an unknown key under ``model:`` is
an error (a typo must not hide a field); ``model.name`` / ``model.version``, when given, must
equal the directory's. The node's validation data is never in the manifest — it is the
node's, named in ``agent.yaml``. Whether a ``.joblib`` (pickle) artefact may be loaded is the
node's decision too, not the trainer's: the manifest carries no trust flag.

Invariants:

* every model, version and stage name is a safe path component (:func:`check_name`): letters,
  digits, ``.``, ``_``, ``-``, starting with a letter or digit — so never ``..``, never a
  separator, never a hidden or temporary file; a version may not be called ``stages``;
* entries on disk with names that are not safe are skipped when listing, never opened;
* the artefact path stays inside its version directory (no ``..``, not absolute, and a
  symbolic link may not lead out of it);
* a stage pointer is replaced whole — temporary file beside it, fsync, rename, fsync of the
  directory — so a reader sees the old version or the new one, never a torn file, and a crash
  at any point leaves the old pointer intact (the stray temporary file is hidden: its name
  starts with ``.``); a pointer is set only to a complete version, and a pointer naming a
  version that is missing or incomplete is a :class:`~trust.errors.NotFoundError` naming the
  pointer file;
* annotations (the decision, record seq, ledger index and policy the agent writes back, as
  string tags) live in ``<name>/annotations/<version>.json``, written only by the agent and
  replaced whole like a stage pointer; the publisher's version directory is never touched
  (once ``READY`` exists it must not change). ``stages`` and ``annotations`` are therefore
  reserved: no version may have either name.

Importing this module stays light (no NumPy, no pyarrow): the idle daemon lists registries.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path, PurePosixPath
from typing import Any

from agent.checks.files import load_manifest, sha256_file
from agent.checks.lineage import as_datetime
from agent.formats import DATA_SUFFIXES, MODEL_SUFFIXES
from trust._internal.files import replace_file, write_temp_beside
from trust._internal.frozen import freeze
from trust.canonical import Sha256, canonical_json, loads_object
from trust.errors import (
    DataError,
    DigestMismatchError,
    FormatError,
    NotFoundError,
    StorageFullError,
    StorageUnavailableError,
)

__all__ = [
    "ANNOTATIONS_DIR",
    "ANNOTATION_DECISION",
    "ANNOTATION_LEDGER_INDEX",
    "ANNOTATION_POLICY",
    "ANNOTATION_RECORD_SEQ",
    "ArtefactKind",
    "ARTEFACT_SUFFIXES",
    "DirectoryRegistry",
    "MANIFEST_FILE",
    "ModelManifest",
    "ModelVersion",
    "READY_FILE",
    "Registry",
    "STAGES_DIR",
    "check_annotations",
    "check_name",
    "manifest_from_document",
]

MANIFEST_FILE = "manifest.yaml"
READY_FILE = "READY"
STAGES_DIR = "stages"
ANNOTATIONS_DIR = "annotations"
ANNOTATIONS_SCHEMA = "warden.registry-annotations/v1"

# The tags the agent writes back on a version it governed (Registry.annotate).
ANNOTATION_DECISION = "warden.decision"
"""``promote``, ``block`` or ``validation_error``: what the agent decided."""
ANNOTATION_RECORD_SEQ = "warden.record_seq"
"""The node's sequence number of the record that says so."""
ANNOTATION_LEDGER_INDEX = "warden.ledger_index"
"""The hub ledger's index of that record, once the hub acknowledged it."""
ANNOTATION_POLICY = "warden.policy"
"""The policy in force, ``<name> v<version>``."""

# Tag keys and values: the subset every registry accepts (MLflow allows more characters in a
# key; a value is bounded well below its limits so that a tag never fails to be written).
_TAG_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,249}")
_MAX_TAG_VALUE = 5000

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_MODEL_KEYS = frozenset(
    {"name", "version", "owner", "framework", "intended_use", "target_stage", "features"}
)


class ArtefactKind(Enum):
    """What a version's artefact is: a model the agent loads, or precomputed predictions."""

    ONNX = "onnx"
    SKOPS = "skops"
    JOBLIB = "joblib"
    PREDICTIONS = "predictions"


# Derived from the loaders' one suffix table (agent.formats), which imports nothing heavy.
ARTEFACT_SUFFIXES: Mapping[str, ArtefactKind] = {
    **{suffix: ArtefactKind(kind) for suffix, kind in MODEL_SUFFIXES.items()},
    **{suffix: ArtefactKind.PREDICTIONS for suffix in DATA_SUFFIXES},
}


def check_name(value: object, *, what: str) -> str:
    """``value`` if it is a safe single path component; FormatError naming ``what`` if not.

    Safe: 1-128 characters from ``[A-Za-z0-9._-]``, the first a letter or digit. That refuses
    ``.``/``..``, separators, hidden names and the registry's own temporary files.
    """
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise FormatError(
            f"{what} {value!r} is not a safe name",
            hint="use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return value


def _check_version(value: object) -> str:
    version = check_name(value, what="version")
    if version == STAGES_DIR:
        raise FormatError(
            f"version {version!r} is reserved: <model>/{STAGES_DIR}/ holds the stage pointers"
        )
    if version == ANNOTATIONS_DIR:
        raise FormatError(f"version {version!r} is reserved: <model>/{ANNOTATIONS_DIR}/ holds "
                          "the agent's annotations")
    return version


def check_annotations(tags: Mapping[str, str], *, what: str) -> dict[str, str]:
    """``tags`` as a plain dict if every key and value can be a registry tag; FormatError
    naming ``what`` and the tag otherwise.

    A key is 1-250 characters from ``[A-Za-z0-9._-]``, the first a letter or digit (e.g.
    ``warden.decision``); a value is a string of at most 5000 characters. At least one tag.
    """
    if not isinstance(tags, Mapping) or not tags:
        raise FormatError(f"{what}: annotations must be a non-empty mapping of tags, "
                          f"got {tags!r}")
    out: dict[str, str] = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not _TAG_KEY.fullmatch(key):
            raise FormatError(f"{what}: tag key {key!r} is not a safe tag name",
                              hint="use 1-250 letters, digits, '.', '_' or '-', starting "
                                   "with a letter or digit")
        if not isinstance(value, str) or len(value) > _MAX_TAG_VALUE:
            shown = value if not isinstance(value, str) else f"{len(value)} characters"
            raise FormatError(f"{what}: tag {key!r} must be a string of at most "
                              f"{_MAX_TAG_VALUE} characters, got {shown!r}")
        out[key] = value
    return out


@dataclass(frozen=True)
class ModelManifest:
    """A version's manifest, checked: what the trainer declares about the model.

    Digests are the *declared* ones (``None`` when not declared); ``parameters`` is read-only.
    """

    name: str
    version: str
    target_stage: str
    artefact: str
    artefact_kind: ArtefactKind
    artefact_sha256: Sha256 | None
    owner: str | None
    framework: str | None
    intended_use: str | None
    features: tuple[str, ...] | None
    training_data_uri: str | None
    training_data_sha256: Sha256 | None
    code_commit: str | None
    parameters: Mapping[str, Any]
    trained_at: dt.datetime | None


@dataclass(frozen=True)
class ModelVersion:
    """A complete version as read from the registry: its manifest, files and artefact digest.

    ``artefact_sha256`` is recomputed from the file at read time; when the manifest declares
    a digest it equals it (a mismatch is refused, never returned).
    """

    manifest: ModelManifest
    directory: Path
    manifest_path: Path
    artefact_path: Path
    artefact_sha256: Sha256

    @property
    def name(self) -> str:
        """The model's name."""
        return self.manifest.name

    @property
    def version(self) -> str:
        """The version's name (its directory)."""
        return self.manifest.version


class Registry(ABC):
    """Where the agent finds model versions and keeps their stage pointers.

    Every name argument is checked with :func:`check_name` (FormatError). Only complete
    versions exist for the caller: an incomplete one is not listed and not readable.
    """

    @abstractmethod
    def models(self) -> tuple[str, ...]:
        """The registered models' names, sorted."""

    @abstractmethod
    def versions(self, name: str) -> tuple[str, ...]:
        """The complete versions of model ``name``, oldest first as the registry orders them
        (directory: sorted by name, versions are not interpreted; MLflow: by version
        number); NotFoundError if there is no such model."""

    @abstractmethod
    def read(self, name: str, version: str) -> ModelVersion:
        """Version ``version`` of ``name``, its manifest checked and its artefact present
        (and matching its declared digest). NotFoundError if not a complete version."""

    @abstractmethod
    def current(self, name: str, stage: str) -> str | None:
        """The version at ``stage``, or ``None`` when no version was ever put there."""

    @abstractmethod
    def stages(self, name: str) -> dict[str, str]:
        """Every stage of ``name`` that has a version, as ``{stage: version}``."""

    @abstractmethod
    def set_stage(self, name: str, stage: str, version: str) -> None:
        """Point ``stage`` of ``name`` at ``version`` (a complete version), atomically."""

    @abstractmethod
    def annotate(self, name: str, version: str, tags: Mapping[str, str]) -> None:
        """Write ``tags`` (:func:`check_annotations`) on complete version ``version``: each
        replaces a tag of the same key, other tags stay. The agent's write-back (decision,
        record seq, ledger index, policy: the ``ANNOTATION_*`` keys); the ledger, not the
        registry, is the record of what was decided. NotFoundError if not a complete
        version."""

    @abstractmethod
    def annotations(self, name: str, version: str) -> dict[str, str]:
        """The tags of complete version ``version``: every tag :meth:`annotate` wrote (MLflow:
        every tag of the version, the trainer's included); ``{}`` when none."""


def _optional_str(section: Mapping[str, Any], key: str, path: Path) -> str | None:
    value = section.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise FormatError(f"{path}: manifest field 'model.{key}' must be a non-empty string, "
                          f"got {value!r}")
    return value


def _features(value: Any, path: Path) -> tuple[str, ...] | None:
    if value is None:
        return None
    what = f"{path}: manifest field 'model.features'"
    if not isinstance(value, list) or not value:
        raise FormatError(f"{what} must be a non-empty list of column names, got {value!r}")
    seen: set[str] = set()
    for item in value:
        if not isinstance(item, str) or not item:
            raise FormatError(f"{what}: {item!r} is not a column name")
        if item in seen:
            raise FormatError(f"{what}: column {item!r} is listed twice")
        seen.add(item)
    return tuple(value)


def _artefact_kind(rel: str, path: Path) -> ArtefactKind:
    lower = rel.lower()
    for suffix, kind in ARTEFACT_SUFFIXES.items():
        if lower.endswith(suffix):
            return kind
    raise FormatError(
        f"{path}: artefact {rel!r} has an unknown kind",
        hint="expected " + ", ".join(ARTEFACT_SUFFIXES) + " (a model or a predictions file)",
    )


def manifest_from_document(
    doc: Mapping[str, Any], path: Path, name: str, version: str
) -> ModelManifest:
    """The registry's view of a manifest already checked by the lineage parser
    (:func:`agent.checks.files.load_manifest`); ``path`` names it in errors."""
    model: Mapping[str, Any] = doc.get("model") or {}
    unknown = sorted(set(map(str, model)) - _MODEL_KEYS)
    if unknown:
        raise FormatError(f"{path}: unknown manifest key 'model.{unknown[0]}'",
                          hint=f"known keys under model: {', '.join(sorted(_MODEL_KEYS))}")
    for key, expected in (("name", name), ("version", version)):
        declared = model.get(key)
        if declared is not None and declared != expected:
            raise FormatError(f"{path}: manifest says model.{key} is {declared!r} but the "
                              f"directory is {expected!r}")
    if model.get("target_stage") is None:
        raise FormatError(f"{path}: manifest field 'model.target_stage' is missing",
                          hint="name the stage to promote to, e.g. target_stage: production")
    stage = check_name(model.get("target_stage"), what=f"{path}: model.target_stage")
    artifact: Mapping[str, Any] = doc.get("artifact") or {}
    rel = artifact.get("path")
    if not rel:
        raise FormatError(f"{path}: manifest field 'artifact.path' is missing",
                          hint="name the model or predictions file in this directory")
    parts = PurePosixPath(rel).parts
    if PurePosixPath(rel).is_absolute() or ".." in parts or "\\" in rel:
        raise FormatError(f"{path}: artifact.path {rel!r} must be a relative path inside the "
                          "version directory")
    data: Mapping[str, Any] = doc.get("training_data") or {}
    code: Mapping[str, Any] = doc.get("code") or {}
    declared = artifact.get("sha256")
    data_sha = data.get("sha256")
    return ModelManifest(
        name=name,
        version=version,
        target_stage=stage,
        artefact=rel,
        artefact_kind=_artefact_kind(rel, path),
        artefact_sha256=None if declared is None else Sha256(declared.strip().lower()),
        owner=_optional_str(model, "owner", path),
        framework=_optional_str(model, "framework", path),
        intended_use=_optional_str(model, "intended_use", path),
        features=_features(model.get("features"), path),
        training_data_uri=data.get("source"),
        training_data_sha256=None if data_sha is None else Sha256(data_sha.strip().lower()),
        code_commit=code.get("commit"),
        parameters=freeze(dict(doc.get("parameters") or {})),
        # Already validated by manifest_from_text; the lineage module owns the conversion.
        trained_at=as_datetime(doc.get("trained_at"), "trained_at"),
    )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _storage_error(path: Path, exc: OSError, what: str = "stage pointer",
                   old: str = "pointer") -> StorageUnavailableError:
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFullError(f"{path}: cannot write {what} ({reason}); "
                                f"the old {old} is unchanged", hint="free disk space and retry")
    return StorageUnavailableError(f"{path}: cannot write {what} ({reason}); "
                                   f"the old {old} is unchanged")


class DirectoryRegistry(Registry):
    """:class:`Registry` over a directory tree (layout in the module docstring).

    ``root`` is the ``models/`` directory. Nothing is read or created at construction; the
    agent is the only writer of ``<name>/stages/`` (the publisher writes version directories).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _model_dir(self, name: str) -> Path:
        d = self.root / check_name(name, what="model name")
        if not d.is_dir():
            raise NotFoundError(f"{d}: no such model in the registry")
        return d

    def _complete(self, model_dir: Path, version: str) -> bool:
        d = model_dir / version
        return d.is_dir() and (d / READY_FILE).is_file()

    def _safe_entries(self, d: Path) -> list[str]:
        try:
            names = [e.name for e in d.iterdir()]
        except FileNotFoundError:
            raise NotFoundError(f"{d}: no such directory") from None
        except NotADirectoryError:
            raise NotFoundError(f"{d}: not a directory") from None
        except OSError as exc:
            raise DataError(f"{d}: cannot list ({exc.strerror or exc})") from None
        return sorted(n for n in names if _NAME.fullmatch(n))

    def models(self) -> tuple[str, ...]:
        return tuple(n for n in self._safe_entries(self.root) if (self.root / n).is_dir())

    def versions(self, name: str) -> tuple[str, ...]:
        d = self._model_dir(name)
        return tuple(
            v for v in self._safe_entries(d)
            if v not in (STAGES_DIR, ANNOTATIONS_DIR) and self._complete(d, v)
        )

    def read(self, name: str, version: str) -> ModelVersion:
        d = self._model_dir(name)
        version = _check_version(version)
        vdir = d / version
        if not self._complete(d, version):
            raise NotFoundError(f"{vdir}: no such complete version (no {READY_FILE} marker)",
                                hint=f"the publisher writes {READY_FILE} last, when every "
                                     "file is in place")
        manifest_path = vdir / MANIFEST_FILE
        manifest = manifest_from_document(load_manifest(manifest_path), manifest_path,
                                          name, version)
        artefact_path = vdir / manifest.artefact
        try:
            inside = artefact_path.resolve().is_relative_to(vdir.resolve())
        except OSError as exc:  # a symlink loop, say
            raise DataError(f"{artefact_path}: cannot resolve ({exc.strerror or exc})") from None
        if not inside:
            raise FormatError(f"{manifest_path}: artifact.path {manifest.artefact!r} leads "
                              "outside the version directory")
        if not artefact_path.is_file():
            raise DataError(f"{artefact_path}: artefact named in {manifest_path} "
                            "(artifact.path) does not exist")
        actual = Sha256(sha256_file(artefact_path))
        if manifest.artefact_sha256 is not None and actual != manifest.artefact_sha256:
            raise DigestMismatchError(
                f"{artefact_path}: SHA-256 is {actual}, but {manifest_path} declares "
                f"{manifest.artefact_sha256}",
                hint="the artefact changed after publishing, or the manifest is wrong",
            )
        return ModelVersion(manifest, vdir, manifest_path, artefact_path, actual)

    def _pointer(self, name: str, stage: str) -> tuple[Path, Path]:
        d = self._model_dir(name)
        return d, d / STAGES_DIR / check_name(stage, what="stage")

    def _read_pointer(self, model_dir: Path, pointer: Path) -> str | None:
        try:
            raw = pointer.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise DataError(f"{pointer}: cannot read stage pointer "
                            f"({exc.strerror or exc})") from None
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            text = None
        if text is None or not text.endswith("\n") or not _NAME.fullmatch(text[:-1]):
            raise FormatError(f"{pointer}: garbled stage pointer {raw[:80]!r}",
                              hint="it holds one line, a version name")
        version = text[:-1]
        if version in (STAGES_DIR, ANNOTATIONS_DIR) or not self._complete(model_dir, version):
            raise NotFoundError(f"{pointer}: names version {version!r}, which is not a "
                                f"complete version in {model_dir}")
        return version

    def current(self, name: str, stage: str) -> str | None:
        d, pointer = self._pointer(name, stage)
        return self._read_pointer(d, pointer)

    def stages(self, name: str) -> dict[str, str]:
        d = self._model_dir(name)
        sdir = d / STAGES_DIR
        if not sdir.is_dir():
            return {}
        out: dict[str, str] = {}
        for stage in self._safe_entries(sdir):  # temporary files start with '.': skipped
            version = self._read_pointer(d, sdir / stage)
            if version is not None:
                out[stage] = version
        return out

    def set_stage(self, name: str, stage: str, version: str) -> None:
        d, pointer = self._pointer(name, stage)
        version = _check_version(version)
        if not self._complete(d, version):
            raise NotFoundError(f"{d / version}: no such complete version; "
                                f"stage {stage!r} not changed")
        try:
            pointer.parent.mkdir(exist_ok=True)
            tmp = write_temp_beside(pointer, f"{version}\n".encode("ascii"), 0o644)
        except OSError as exc:
            raise _storage_error(pointer, exc) from None
        try:
            os.replace(tmp, pointer)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise _storage_error(pointer, exc) from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        try:
            _fsync_dir(pointer.parent)  # the rename itself must survive a power cut
        except OSError as exc:
            raise StorageUnavailableError(
                f"{pointer}: stage pointer replaced but not confirmed on disk "
                f"({exc.strerror or exc})"
            ) from None

    # -- annotations -------------------------------------------------------------------------

    def _annotations_file(self, name: str, version: str) -> tuple[Path, Path]:
        d = self._model_dir(name)
        version = _check_version(version)
        if not self._complete(d, version):
            raise NotFoundError(f"{d / version}: no such complete version; nothing annotated")
        return d, d / ANNOTATIONS_DIR / f"{version}.json"

    def _read_annotations(self, path: Path, name: str, version: str) -> dict[str, str]:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise DataError(f"{path}: cannot read annotations ({exc.strerror or exc})") from None
        doc = loads_object(raw, what=str(path))
        tags = doc.get("tags")
        if (doc.get("schema") != ANNOTATIONS_SCHEMA or doc.get("model") != name
                or doc.get("version") != version or not isinstance(tags, dict)):
            raise FormatError(f"{path}: not the {ANNOTATIONS_SCHEMA} annotations of "
                              f"{name} {version}")
        return check_annotations(tags, what=str(path)) if tags else {}

    def annotate(self, name: str, version: str, tags: Mapping[str, str]) -> None:
        d, path = self._annotations_file(name, version)
        new = check_annotations(tags, what=f"{d / version}")
        merged = {**self._read_annotations(path, name, version), **new}
        doc = {"schema": ANNOTATIONS_SCHEMA, "model": name, "version": version,
               "tags": merged}
        try:
            path.parent.mkdir(exist_ok=True)
            replace_file(path, canonical_json(doc) + b"\n")
        except OSError as exc:
            raise _storage_error(path, exc, "annotations", "annotations") from None

    def annotations(self, name: str, version: str) -> dict[str, str]:
        _, path = self._annotations_file(name, version)
        return self._read_annotations(path, name, version)
