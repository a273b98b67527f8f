"""A policy bundle's manifest (name, version, expiry, entrypoint, decision convention, input
projection) and the checks its fields share between ``bundle.yaml``
(:mod:`trust.policy.source`) and the signed payload (:mod:`trust.policy.bundle`).

Invariants: a :class:`Manifest` built by :func:`manifest_from_payload` has every field checked;
the same checks refuse the same values in a source directory. ``input_projection`` is the one
optional key: absent, the payload (and so the digest) of a bundle is what it was before the key
existed; present, it is signed with the rest (see :mod:`trust.policy.projection`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from trust._internal.fields import check_fields, check_int, check_str
from trust.errors import FormatError
from trust.policy.decision import Convention
from trust.policy.projection import check_projection
from trust.timeutil import format_time, parse_time

__all__ = [
    "Manifest",
    "check_decision",
    "check_entrypoint",
    "check_name",
    "check_projection",
    "check_rego_path",
    "check_version",
    "manifest_from_payload",
]

_MANIFEST_KEYS = ("decision", "description", "entrypoint", "expires", "name", "version")
_OPTIONAL_KEYS = ("input_projection",)
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
_ENTRYPOINT_RE = re.compile(r"^data(\.[A-Za-z_][A-Za-z0-9_]*)+$")


@dataclass(frozen=True)
class Manifest:
    """The signed description of a bundle."""

    name: str
    version: int
    expires: datetime
    description: str
    entrypoint: str
    decision: Convention
    input_projection: tuple[str, ...] | None = None
    """The input paths the policy reads (None: it is given the whole input)."""

    def to_dict(self) -> dict[str, Any]:
        """The manifest object as it appears in the payload (``input_projection`` only when
        declared)."""
        out: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "expires": format_time(self.expires),
            "description": self.description,
            "entrypoint": self.entrypoint,
            "decision": self.decision.value,
        }
        if self.input_projection is not None:
            out["input_projection"] = list(self.input_projection)
        return out

    @property
    def rego_entrypoint(self) -> str:
        """The entrypoint in rego-cpp's ``a/b/c`` form."""
        return self.entrypoint[len("data.") :].replace(".", "/")


def check_name(value: Any, *, what: str) -> str:
    """A bundle name: ``[a-z0-9][a-z0-9._-]*``, at most 128 characters."""
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise FormatError(f"{what}: field 'name' must match [a-z0-9][a-z0-9._-]*, got {value!r}")
    return value


def check_version(value: Any, *, what: str) -> int:
    """A bundle version: an integer ≥ 1."""
    return check_int(value, what=f"{what}: field 'version'", minimum=1)


def check_entrypoint(value: Any, *, what: str) -> str:
    """A Rego reference such as ``data.warden.decision``."""
    if not isinstance(value, str) or not _ENTRYPOINT_RE.match(value):
        raise FormatError(
            f"{what}: field 'entrypoint' must be a Rego reference like data.warden.decision, "
            f"got {value!r}"
        )
    return value


def check_decision(value: Any, *, what: str) -> Convention:
    """One of the :class:`Convention` names."""
    try:
        return Convention(value)
    except ValueError:
        allowed = ", ".join(c.value for c in Convention)
        raise FormatError(
            f"{what}: field 'decision' must be one of {allowed}; got {value!r}"
        ) from None


def check_rego_path(path: Any, *, what: str) -> str:
    """A relative, ``/``-separated ``.rego`` path without ``..`` (a bundle file name)."""
    if (
        not isinstance(path, str)
        or not path.endswith(".rego")
        or path.startswith("/")
        or "\\" in path
        or any(part in ("", ".", "..") for part in path.split("/"))
    ):
        raise FormatError(f"{what}: file path {path!r} must be a relative .rego path without '..'")
    return path


def manifest_from_payload(obj: Any, *, what: str) -> Manifest:
    """The signed payload's ``manifest`` object, every key but ``input_projection`` required,
    every key checked."""
    check_fields(
        obj,
        _MANIFEST_KEYS,
        _OPTIONAL_KEYS,
        what=what,
        noun="manifest key",
        not_object=f"{what}: field 'manifest' must be an object",
    )
    return Manifest(
        name=check_name(obj["name"], what=what),
        version=check_version(obj["version"], what=what),
        expires=parse_time(obj["expires"], what=f"{what}: field 'expires'"),
        description=check_str(obj["description"], what=f"{what}: field 'description'"),
        entrypoint=check_entrypoint(obj["entrypoint"], what=what),
        decision=check_decision(obj["decision"], what=what),
        input_projection=(
            check_projection(obj["input_projection"], what=what)
            if "input_projection" in obj
            else None
        ),
    )
