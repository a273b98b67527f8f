"""Lineage and provenance: what was trained, from what, by which code, and how long ago.

Pure: nothing here reads a file or the clock. :func:`manifest_from_text` parses and
type-checks a manifest's text (the file's name is passed in for messages and to choose JSON or
YAML); :func:`lineage_evidence` takes the parsed manifest, digests computed by the caller and
an explicit ``now``. Reading the files is :mod:`agent.checks.files` (``load_manifest``,
``sha256_file``), called by :func:`agent.checks.run.run_checks`.

The model manifest (``manifest.yaml``) has this shape; every key is optional except where
the policy needs it, and unknown top-level keys are errors (a typo must not hide a field).
Known fields are type-checked by :func:`manifest_from_text`; ``model.version`` and
``code.commit`` must be strings, so quote them in YAML (unquoted, ``1.10`` would silently
become ``1.1``)::

    model: {name: credit-risk, version: "1.4.0"}
    artifact: {path: model.onnx, sha256: <hex>}        # the model file and its digest
    code: {commit: "<git sha>", repository: <url>}
    parameters: {max_depth: 6, ...}
    training_data: {source: s3://bucket/train.parquet, path: train.parquet,
                    sha256: <hex>, rows: 120000, snapshot_date: 2025-01-15,
                    dvc: train.parquet.dvc}             # or dvc: dvc.lock
    trained_at: 2025-01-31T12:00:00Z
    explainability: shap_summary.json                   # optional artefact path

``training_data.dvc`` names the training data's DVC pointer, a ``.dvc`` file or a
``dvc.lock`` (relative to the manifest's directory, or absolute). A ``training_data.source``
that is itself a local path to a ``.dvc`` file or a ``dvc.lock`` (no ``scheme://``) names it
too when ``dvc`` is absent — though ``source`` is also what ``approved_data_sources``
compares. The caller (:func:`agent.checks.run.run_checks`) recomputes the pointer's hashes
(:mod:`agent.checks.dvc`) and passes the result in as ``lineage.dvc``; when the manifest also
names ``training_data.path``, only the pointer's entries for that path (or a tracked
directory holding it) are checked. ``training_data.sha256`` keeps its own meaning: the
SHA-256 of ``training_data.path``, compared by ``data_sha256_verified``; DVC's MD5 never
stands in for it.

Invariants: ``data_age_days`` counts whole days from the training-data snapshot date (or,
when absent, the training date) to ``now``; a digest is ``*_verified: true`` only when it was
recomputed from the file and equals the declared one, ``false`` when it differs, ``None``
when there was nothing to compare.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from trust import strict_yaml
from trust.canonical import loads_strict
from trust.errors import FormatError

__all__ = [
    "as_datetime",
    "manifest_from_text",
    "lineage_evidence",
    "MANIFEST_KEYS",
    "parse_yaml_or_json",
]

MANIFEST_KEYS = frozenset(
    {"model", "artifact", "code", "parameters", "training_data", "trained_at", "explainability"}
)

def parse_yaml_or_json(text: str, path: PurePath) -> Any:
    """Parse ``text`` as JSON (``.json`` suffix) or YAML; FormatError naming the file if bad.

    Both readers are strict: a key repeated in one mapping is refused (naming the key), as a
    second ``model.version`` would otherwise silently replace the first. ``path`` only names
    the source; nothing is read from it.
    """
    if path.suffix.lower() == ".json":
        return loads_strict(text, what=str(path))
    return strict_yaml.load(text, source=str(path))


# Expected type of each known sub-field. Versions and commits must be strings: unquoted,
# YAML turns ``version: 1.10`` into the float 1.1 and a numeric short sha into an int.
_STR = (str,)
_DATE = (str, dt.date)  # dt.datetime is a dt.date
_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "model": {"name": _STR, "version": _STR},
    "artifact": {"path": _STR, "sha256": _STR},
    "code": {"commit": _STR, "repository": _STR},
    "training_data": {
        "source": _STR,
        "path": _STR,
        "sha256": _STR,
        "rows": (int,),
        "snapshot_date": _DATE,
        "dvc": _STR,
    },
}
_QUOTE = {"model.version", "code.commit", "artifact.sha256", "training_data.sha256"}


def _check_field(p: PurePath, key: str, value: Any, types: tuple[type, ...]) -> None:
    if value is None or (isinstance(value, types) and not isinstance(value, bool)):
        return
    kinds = " or ".join("a date" if t is dt.date else f"a {t.__name__}" for t in types)
    kinds = kinds.replace("a str", "a string").replace("a int", "an integer")
    raise FormatError(
        f"{p}: manifest field '{key}' must be {kinds}, got {type(value).__name__} {value!r}",
        hint=f'quote it in YAML, e.g. {key.rsplit(".", 1)[-1]}: "{value}"'
        if key in _QUOTE
        else None,
    )


def manifest_from_text(text: str, path: PurePath) -> dict[str, Any]:
    """Parse and check a model manifest's ``text``; FormatError naming ``path`` and the key.

    Every known field is type-checked here, so later code may trust the shapes; dates and
    digests are also validated here so a bad value is reported with the file's name.
    """
    p = path
    data = parse_yaml_or_json(text, p)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FormatError(f"{p}: manifest must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(map(str, data)) - MANIFEST_KEYS)
    if unknown:
        raise FormatError(
            f"{p}: unknown manifest key '{unknown[0]}'",
            hint=f"known keys: {', '.join(sorted(MANIFEST_KEYS))}",
        )
    for key in ("model", "artifact", "code", "parameters", "training_data"):
        if key in data and data[key] is not None and not isinstance(data[key], dict):
            raise FormatError(
                f"{p}: manifest key '{key}' must be a mapping, got {type(data[key]).__name__}"
            )
    for section, fields in _FIELDS.items():
        for name, types in fields.items():
            _check_field(p, f"{section}.{name}", (data.get(section) or {}).get(name), types)
    _check_field(p, "trained_at", data.get("trained_at"), _DATE)
    _check_field(p, "explainability", data.get("explainability"), _STR)
    pointer = (data.get("training_data") or {}).get("dvc")
    base = None if pointer is None else PurePath(pointer).name
    if base is not None and not (base == "dvc.lock" or (base.endswith(".dvc") and base != ".dvc")):
        raise FormatError(
            f"{p}: manifest field 'training_data.dvc' must name a .dvc file or a dvc.lock, "
            f"got {pointer!r}"
        )
    rows = (data.get("training_data") or {}).get("rows")
    if rows is not None and rows < 0:
        raise FormatError(f"{p}: manifest field 'training_data.rows' is negative: {rows}")
    try:  # validate dates and digests now, while the file name is known
        _check_values(data)
    except FormatError as exc:
        raise FormatError(f"{p}: {exc.message}", hint=exc.hint) from None
    return data


def _check_values(m: Mapping[str, Any]) -> None:
    """Raise what :func:`lineage_evidence` would raise on these dates and digests (same order)."""
    data = m.get("training_data") or {}
    as_datetime(m.get("trained_at"), "trained_at")
    as_datetime(data.get("snapshot_date"), "training_data.snapshot_date")
    _digest((m.get("artifact") or {}).get("sha256"), "artifact.sha256")
    _digest(data.get("sha256"), "training_data.sha256")


def as_datetime(value: Any, field: str) -> dt.datetime | None:
    """A manifest time field (RFC 3339 text or a YAML timestamp) as an aware datetime, or None."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        d = value
    elif isinstance(value, dt.date):
        d = dt.datetime(value.year, value.month, value.day)
    else:
        try:
            d = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise FormatError(f"manifest field '{field}' is not a date: {value!r}") from None
    return d if d.tzinfo else d.replace(tzinfo=dt.UTC)


def _iso(d: dt.datetime | None) -> str | None:
    return None if d is None else d.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _digest(value: Any, field: str) -> str | None:
    # YAML reads an unquoted all-digit value as a number: insist on a 64-hex-digit string.
    if value is None:
        return None
    text = value.strip().lower() if isinstance(value, str) else None
    if text is None or len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise FormatError(
            f"manifest field '{field}' must be a SHA-256 (64 hex digits), got {value!r}",
            hint="quote the digest in YAML",
        )
    return text


def _verified(declared: str | None, actual: str | None) -> bool | None:
    if declared is None or actual is None:
        return None
    return declared == actual


def lineage_evidence(
    manifest: Mapping[str, Any] | None,
    *,
    model_sha256: str | None = None,
    data_sha256: str | None = None,
    dvc: Mapping[str, Any] | None = None,
    now: dt.datetime,
) -> dict[str, Any]:
    """The ``lineage`` evidence section.

    ``model_sha256`` / ``data_sha256`` are digests recomputed from the files (``None`` when
    the file was not available); the manifest's declared digests are compared with them.
    ``dvc`` is the DVC pointer's verification (:func:`agent.checks.dvc.verify_pointer`),
    ``None`` when no pointer was named.
    """
    m = dict(manifest or {})
    model = m.get("model") or {}
    artifact = m.get("artifact") or {}
    code = m.get("code") or {}
    data = m.get("training_data") or {}
    trained_at = as_datetime(m.get("trained_at"), "trained_at")
    snapshot = as_datetime(data.get("snapshot_date"), "training_data.snapshot_date")
    since = snapshot or trained_at
    now = now if now.tzinfo else now.replace(tzinfo=dt.UTC)
    declared_model = _digest(artifact.get("sha256"), "artifact.sha256")
    declared_data = _digest(data.get("sha256"), "training_data.sha256")
    params = m.get("parameters")
    return {
        "manifest_present": manifest is not None,
        "model_name": model.get("name"),
        "model_version": None if model.get("version") is None else str(model.get("version")),
        "model_sha256": model_sha256,
        "model_sha256_declared": declared_model,
        "model_sha256_verified": _verified(declared_model, model_sha256),
        "code_commit": None if code.get("commit") is None else str(code.get("commit")),
        "code_repository": code.get("repository"),
        "parameters": dict(params) if isinstance(params, Mapping) else {},
        "data_source": data.get("source"),
        "data_sha256": declared_data,
        "data_sha256_actual": data_sha256,
        "data_sha256_verified": _verified(declared_data, data_sha256),
        "data_rows": data.get("rows"),
        "trained_at": _iso(trained_at),
        "data_snapshot_date": _iso(snapshot),
        "data_age_days": None if since is None else (now - since).days,
        "dvc": None if dvc is None else dict(dvc),
    }
