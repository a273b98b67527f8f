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

__all__ = ["Sha256", "canonical_json", "sha256_hex", "loads_strict", "loads_object"]

Sha256 = NewType("Sha256", str)
"""A lowercase hex SHA-256 digest (64 characters)."""


def canonical_json(obj: Any) -> bytes:
    """Encode ``obj`` as RFC 8785 canonical JSON bytes."""
    try:
        try:
            return rfc8785.dumps(obj)
        except rfc8785.IntegerDomainError:
            # JCS numbers are doubles; a whole double above 2^53 (1e16, say) comes back from a
            # JSON parser as an int. An int that is the JCS spelling of a double is that double.
            return rfc8785.dumps(_whole_ints_as_doubles(obj))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise FormatError(f"value cannot be canonicalised as JSON: {exc}") from exc


def _whole_ints_as_doubles(obj: Any) -> Any:
    if isinstance(obj, bool):
        return obj
    if isinstance(obj, int) and abs(obj) > _MAX_SAFE_INTEGER:
        as_double = float(obj)
        if rfc8785.dumps(as_double) != str(obj).encode("ascii"):
            raise FormatError(f"integer {obj} is not exactly representable in canonical JSON")
        return as_double
    if isinstance(obj, dict):
        return {k: _whole_ints_as_doubles(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_whole_ints_as_doubles(v) for v in obj]
    return obj


def sha256_hex(data: bytes) -> Sha256:
    """Lowercase hex SHA-256 of ``data``."""
    return Sha256(hashlib.sha256(data).hexdigest())


_MAX_SAFE_INTEGER = 2**53 - 1


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def _parse_int(text: str) -> int | float:
    # RFC 8785 writes whole doubles such as 1e16 as "10000000000000000"; reading that back as a
    # Python int would put it outside JCS's integer domain. Beyond 2^53 it is a double.
    value = int(text)
    return value if abs(value) <= _MAX_SAFE_INTEGER else float(value)


def loads_strict(data: bytes | str, *, what: str) -> Any:
    """Parse JSON, refusing duplicate object keys.

    ``json.loads`` keeps the last of two equal keys while other parsers keep the first, so one
    signed file could show different content to different verifiers; Warden refuses it.
    """
    try:
        return json.loads(data, object_pairs_hook=_no_duplicates, parse_int=_parse_int)
    except _DuplicateKey as exc:
        raise FormatError(f"{what}: duplicate JSON key {exc.args[0]!r}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FormatError(f"{what}: not valid JSON ({exc})") from exc
    except ValueError as exc:  # e.g. an integer beyond Python's 4300-digit conversion limit
        raise FormatError(f"{what}: unreadable JSON number ({exc})") from exc
    except RecursionError as exc:
        raise FormatError(f"{what}: JSON nested too deeply") from exc


def loads_object(data: bytes | str, *, what: str) -> dict[str, Any]:
    """Parse JSON that must be an object (no duplicate keys); ``what`` names the source."""
    value = loads_strict(data, what=what)
    if not isinstance(value, dict):
        raise FormatError(f"{what}: expected a JSON object, got {type(value).__name__}")
    return value
