"""One canonical JSON encoding for everything Warden hashes or signs.

RFC 8785 (JSON Canonicalization Scheme) through the ``rfc8785`` library: sorted keys, no
insignificant whitespace, ECMAScript number formatting, UTF-8. Two parties that build the
same object get the same bytes, so a digest or signature over them is reproducible.
Floats that are NaN or infinite cannot be encoded and raise :class:`FormatError`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, NewType

import rfc8785

from trust.errors import FormatError

__all__ = ["Sha256", "canonical_json", "sha256_hex", "loads_object"]

Sha256 = NewType("Sha256", str)
"""A lowercase hex SHA-256 digest (64 characters)."""


def canonical_json(obj: Any) -> bytes:
    """Encode ``obj`` as RFC 8785 canonical JSON bytes."""
    try:
        return rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise FormatError(f"value cannot be canonicalised as JSON: {exc}") from exc


def sha256_hex(data: bytes) -> Sha256:
    """Lowercase hex SHA-256 of ``data``."""
    return Sha256(hashlib.sha256(data).hexdigest())


def loads_object(data: bytes | str, *, what: str) -> dict[str, Any]:
    """Parse JSON that must be an object; ``what`` names the source in errors."""
    try:
        value = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FormatError(f"{what}: not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise FormatError(f"{what}: expected a JSON object, got {type(value).__name__}")
    return value
