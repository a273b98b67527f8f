"""Lineage and provenance: what was trained, from what, by which code, and how long ago.

:func:`lineage_evidence` is pure: it takes the parsed manifest and digests computed by the
caller. The two I/O helpers beside it are explicit: :func:`sha256_file` (streamed, constant
memory) and :func:`load_manifest` (YAML or JSON).

The model manifest (``manifest.yaml``) has this shape; every key is optional except where
the policy needs it, and unknown top-level keys are errors (a typo must not hide a field)::

    model: {name: credit-risk, version: "1.4.0"}
    artifact: {path: model.onnx, sha256: <hex>}        # the model file and its digest
    code: {commit: <git sha>, repository: <url>}
    parameters: {max_depth: 6, ...}
    training_data: {source: s3://bucket/train.parquet, path: train.parquet,
                    sha256: <hex>, rows: 120000, snapshot_date: 2025-01-15}
    trained_at: 2025-01-31T12:00:00Z
    explainability: shap_summary.json                   # optional artefact path

Invariants: ``data_age_days`` counts whole days from the training-data snapshot date (or,
when absent, the training date) to ``now``; a digest is ``*_verified: true`` only when it was
recomputed from the file and equals the declared one, ``false`` when it differs, ``None``
when there was nothing to compare.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from trust.errors import DataError, FormatError

__all__ = ["sha256_file", "load_manifest", "lineage_evidence", "MANIFEST_KEYS"]

MANIFEST_KEYS = frozenset(
    {"model", "artifact", "code", "parameters", "training_data", "trained_at", "explainability"}
)
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


def load_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a model manifest (YAML or JSON); FormatError naming the file and key if bad."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{p}: no such manifest file") from None
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise FormatError(f"{p}: not valid YAML/JSON ({str(exc).splitlines()[0]})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FormatError(f"{p}: manifest must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - MANIFEST_KEYS)
    if unknown:
        raise FormatError(
            f"{p}: unknown manifest key '{unknown[0]}'",
            hint=f"known keys: {', '.join(sorted(MANIFEST_KEYS))}",
        )
    for key in ("model", "artifact", "code", "parameters", "training_data"):
        if key in data and not isinstance(data[key], dict):
            raise FormatError(f"{p}: manifest key '{key}' must be a mapping")
    return data


def _as_datetime(value: Any, field: str) -> dt.datetime | None:
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
    now: dt.datetime,
) -> dict[str, Any]:
    """The ``lineage`` evidence section.

    ``model_sha256`` / ``data_sha256`` are digests recomputed from the files (``None`` when
    the file was not available); the manifest's declared digests are compared with them.
    """
    m = dict(manifest or {})
    model = m.get("model") or {}
    artifact = m.get("artifact") or {}
    code = m.get("code") or {}
    data = m.get("training_data") or {}
    trained_at = _as_datetime(m.get("trained_at"), "trained_at")
    snapshot = _as_datetime(data.get("snapshot_date"), "training_data.snapshot_date")
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
    }
