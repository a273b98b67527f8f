"""Bundle source directories: ``bundle.yaml`` plus ``.rego`` files, read and checked.

What compliance edits (see :mod:`trust.policy.bundle` for the layout and every key of
``bundle.yaml``). Invariants: every YAML mapping is read strictly (a repeated key is refused,
never resolved to the last one); every error names the file and the key; ``data`` must be
encodable as canonical JSON; hidden files are skipped; an ``include``d file never shadows one
already in the bundle.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from trust import strict_yaml
from trust._internal.fields import check_str
from trust.canonical import canonical_json
from trust.errors import FormatError
from trust.policy.decision import Convention
from trust.policy.manifest import (
    Manifest,
    check_decision,
    check_entrypoint,
    check_name,
    check_projection,
    check_version,
)
from trust.timeutil import parse_duration, parse_time, utcnow

__all__ = ["MANIFEST_FILE", "BundleSource", "load_source", "read_rego_dir"]

MANIFEST_FILE = "bundle.yaml"
_SOURCE_KEYS = frozenset(
    {
        "name",
        "version",
        "expires",
        "description",
        "entrypoint",
        "decision",
        "data",
        "include",
        "input_projection",
    }
)


@dataclass(frozen=True)
class BundleSource:
    """A bundle source directory, read and checked (not compiled: see ``warden policy check``).

    ``expires`` is either an absolute time or a duration resolved when the bundle is signed.
    """

    directory: Path
    name: str
    version: int
    expires: datetime | str
    description: str
    entrypoint: str
    decision: Convention
    data: Mapping[str, Any]
    files: Mapping[str, str]
    origins: Mapping[str, Path] = field(default_factory=dict)
    input_projection: tuple[str, ...] | None = None

    def manifest(self, now: datetime | None = None) -> Manifest:
        """The manifest, with a relative ``expires`` resolved against ``now``."""
        expires = self.expires
        if isinstance(expires, str):
            expires = (now or utcnow()) + parse_duration(
                expires, what=f"{self.directory / MANIFEST_FILE}: field 'expires'"
            )
        return Manifest(
            self.name,
            self.version,
            expires,
            self.description,
            self.entrypoint,
            self.decision,
            self.input_projection,
        )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path}: not UTF-8 text") from exc
    except OSError as exc:
        raise FormatError(f"{path}: cannot read ({exc.strerror})") from exc


def _rego_files(directory: Path) -> list[Path]:
    return sorted(
        p
        for p in directory.rglob("*.rego")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(directory).parts)
    )


def read_rego_dir(directory: str | Path) -> dict[str, str]:
    """Every ``.rego`` file under ``directory`` (hidden ones skipped) as relative POSIX path →
    text; a file that is not UTF-8 or cannot be read raises :class:`FormatError` naming it."""
    d = Path(directory)
    return {p.relative_to(d).as_posix(): _read_text(p) for p in _rego_files(d)}


def _source_expires(value: Any, *, what: str) -> datetime | str:
    if isinstance(value, datetime):  # YAML turns unquoted timestamps into datetimes
        if value.tzinfo is None:
            raise FormatError(f"{what}: field 'expires' {value} has no timezone; use UTC with 'Z'")
        return value.astimezone(UTC)
    if isinstance(value, date):
        raise FormatError(f"{what}: field 'expires' must be a time with 'Z', got the date {value}")
    if isinstance(value, str) and re.match(r"^\s*\d+\s*[smhdw]\s*$", value):
        if not parse_duration(value, what=f"{what}: field 'expires'"):
            # A bundle valid for zero seconds is expired when signed: refuse it here.
            raise FormatError(f"{what}: field 'expires' {value.strip()!r} would expire at once")
        return value.strip()
    return parse_time(value, what=f"{what}: field 'expires'")


def load_source(directory: str | Path) -> BundleSource:
    """Read ``DIR/bundle.yaml`` and every ``.rego`` file; errors name the file and key."""
    d = Path(directory)
    mpath = d / MANIFEST_FILE
    if not d.is_dir():
        raise FormatError(f"{d}: not a directory (a policy bundle source is a directory)")
    if not mpath.is_file():
        raise FormatError(f"{mpath}: missing; a bundle directory needs a {MANIFEST_FILE}")
    what = str(mpath)
    # Strict: a repeated key (a second ``min_accuracy`` or ``version``) is refused, never
    # silently resolved to the last one.
    obj = strict_yaml.load(_read_text(mpath), source=what)
    if not isinstance(obj, dict):
        raise FormatError(f"{what}: expected a mapping of manifest keys")
    unknown = set(obj) - _SOURCE_KEYS
    if unknown:
        raise FormatError(
            f"{what}: unknown key {sorted(map(str, unknown))[0]!r}",
            hint="allowed keys: " + ", ".join(sorted(_SOURCE_KEYS)),
        )
    for required in ("name", "version", "expires", "entrypoint"):
        if required not in obj:
            raise FormatError(f"{what}: missing key {required!r}")
    data = obj.get("data") or {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise FormatError(f"{what}: field 'data' must be a mapping with string keys")
    canonical_json(data)  # refuses NaN, infinities, dates and other non-JSON values early
    files: dict[str, str] = {}
    origins: dict[str, Path] = {}
    for p in _rego_files(d):
        rel = p.relative_to(d).as_posix()
        files[rel] = _read_text(p)
        origins[rel] = p
    include = obj.get("include") or []
    if not isinstance(include, list) or not all(isinstance(i, str) for i in include):
        raise FormatError(f"{what}: field 'include' must be a list of directories")
    for inc in include:
        idir = (d / inc).resolve()
        if not idir.is_dir():
            raise FormatError(f"{what}: include {inc!r}: {idir} is not a directory")
        for p in _rego_files(idir):
            rel = f"{idir.name}/{p.relative_to(idir).as_posix()}"
            if rel in files:
                raise FormatError(f"{what}: include {inc!r}: {rel} is already in the bundle")
            files[rel] = _read_text(p)
            origins[rel] = p
    if not any(not f.endswith("_test.rego") for f in files):
        raise FormatError(f"{d}: no .rego policy module found")
    return BundleSource(
        directory=d,
        name=check_name(obj["name"], what=what),
        version=check_version(obj["version"], what=what),
        expires=_source_expires(obj["expires"], what=what),
        description=check_str(obj.get("description", ""), what=f"{what}: field 'description'"),
        entrypoint=check_entrypoint(obj["entrypoint"], what=what),
        decision=check_decision(obj.get("decision", Convention.DOCUMENT.value), what=what),
        data=MappingProxyType(data),
        files=MappingProxyType(files),
        origins=MappingProxyType(origins),
        input_projection=(
            check_projection(obj["input_projection"], what=what)
            if "input_projection" in obj
            else None
        ),
    )
