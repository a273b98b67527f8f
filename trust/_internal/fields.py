"""Field validators shared by every signed payload and envelope parser in :mod:`trust`.

Each takes the value, a ``what`` naming where it came from (``"record 3 of the batch: seq"``)
and either returns the value, narrowed to its type, or raises :class:`FormatError` naming
``what`` and the offending value. They never coerce: ``"1"`` is not an integer and ``True``
is not a number.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from trust.canonical import Sha256
from trust.errors import FormatError

__all__ = [
    "check_fields",
    "check_hex64",
    "check_int",
    "check_non_empty_str",
    "check_payload_type",
    "check_schema",
    "check_str",
]

_HEX64 = re.compile(r"[0-9a-f]{64}")


def check_fields(
    obj: Any,
    required: Sequence[str],
    optional: Iterable[str] = (),
    *,
    what: str,
    noun: str = "field",
    not_object: str | None = None,
) -> dict[str, Any]:
    """``obj`` if it is a JSON object with every ``required`` key and no key outside
    ``required`` and ``optional``.

    An unknown key is reported before a missing one (the first in sorted order); missing keys
    are reported in the order ``required`` lists them. ``noun`` words the messages
    (``"unknown payload key 'x'"``); ``not_object`` replaces the message for a non-object.
    """
    if not isinstance(obj, dict):
        raise FormatError(not_object or f"{what} must be an object")
    unknown = set(obj).difference(required, optional)
    if unknown:
        raise FormatError(f"{what}: unknown {noun} {sorted(unknown)[0]!r}")
    for name in required:
        if name not in obj:
            raise FormatError(f"{what}: missing {noun} {name!r}")
    return obj


def check_str(value: Any, *, what: str) -> str:
    """``value`` if it is a string (possibly empty)."""
    if not isinstance(value, str):
        raise FormatError(f"{what} must be a string, got {value!r}")
    return value


def check_non_empty_str(value: Any, *, what: str) -> str:
    """``value`` if it is a non-empty string."""
    if not isinstance(value, str) or not value:
        raise FormatError(f"{what} must be a non-empty string, got {value!r}")
    return value


def check_int(value: Any, *, what: str, minimum: int) -> int:
    """``value`` if it is an integer (not a bool, not a float) of at least ``minimum``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise FormatError(f"{what} must be an integer ≥ {minimum}, got {value!r}")
    return value


def check_hex64(value: Any, *, what: str) -> Sha256:
    """``value`` if it is 64 lowercase hex characters (a SHA-256 digest)."""
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise FormatError(f"{what} must be 64 lowercase hex characters, got {value!r}")
    return Sha256(value)


def check_schema(value: Any, expected: str, *, what: str) -> str:
    """``value`` if it is exactly the schema name ``expected``."""
    if value != expected:
        raise FormatError(f"{what}: schema is {value!r}, expected {expected!r}")
    return expected


def check_payload_type(actual: str, expected: str, *, what: str) -> None:
    """Refuse a DSSE envelope whose ``payloadType`` is not ``expected``."""
    if actual != expected:
        raise FormatError(f"{what}: payloadType is {actual!r}, expected {expected!r}")
