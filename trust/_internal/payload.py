"""The one loader of signed payloads: bytes → strict JSON object in canonical form.

Every signed Warden payload (audit records, hub events, approvals, trust roots, policy
bundles) is RFC 8785 canonical JSON and must re-encode to the very bytes that were signed, so
an object has one byte form and one digest. The signature alone does not make this check
redundant: it fixes which bytes were signed, not that every reader sees the same *fields* in
them. A duplicate key (``{"node_id":"a",…,"node_id":"b"}``: Python keeps the last, other
parsers the first), an integer beyond 2^53 or a lone surrogate escape would let one verifier
read another object than the next. :func:`load_canonical_object` refuses all of these.

It is fast for ordinary payloads (the hub runs it once per ingested record): the text is parsed
with the C ``json`` decoder and compared with Python's sorted compact encoding, which equals the
RFC 8785 form for ASCII text whose numbers print alike in Python and ECMAScript; only other
payloads take the exact (pure Python) ``rfc8785`` path. A duplicate key cannot survive the
comparison (the re-encoding is shorter); on failure the text is re-read strictly so the error
names the duplicated key.
"""

from __future__ import annotations

import json
from typing import Any

from trust.canonical import canonical_json, loads_strict
from trust.errors import FormatError

__all__ = ["load_canonical_object"]

_MAX_SAFE_INT = 2**53 - 1


def _safe_float(f: float) -> bool:
    return 1e-4 <= abs(f) < 1e16 and not f.is_integer()


def _plain_json(value: Any) -> bool:
    """Whether Python's sorted compact JSON of ``value`` is certainly its RFC 8785 form.

    True unless ``value`` holds a float Python and ECMAScript print differently (integral,
    tiny or huge ones), an integer beyond 2^53 - 1 (which RFC 8785 refuses) or a key beyond
    the BMP (UTF-16 and code-point order then differ).
    """
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            for k, x in v.items():
                if not k.isascii() and max(k) > "\uffff":
                    return False
                stack.append(x)
        elif isinstance(v, list):
            stack.extend(v)
        elif (isinstance(v, int) and not isinstance(v, bool) and abs(v) > _MAX_SAFE_INT) or (
            isinstance(v, float) and not _safe_float(v)
        ):
            return False
    return True


class _Numbers:
    """What the parser saw of the numbers, for the canonical fast path."""

    __slots__ = ("floats", "long_int")

    def __init__(self) -> None:
        self.floats: list[float] = []
        self.long_int = False

    def parse_float(self, text: str) -> float:
        f = float(text)
        self.floats.append(f)
        return f

    def parse_int(self, text: str) -> int:
        # 16+ characters may exceed 2^53 - 1, which RFC 8785 treats differently: slow path.
        if len(text) > 15:
            self.long_int = True
        return int(text)


def _is_canonical(obj: Any, data: bytes, numbers: _Numbers) -> bool:
    """``canonical_json(obj) == data``, fast for ordinary payloads (see the module docstring)."""
    try:
        fast = json.dumps(
            obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        fast = b""
    if fast == data:
        if data.isascii() and not numbers.long_int and all(map(_safe_float, numbers.floats)):
            return True
        if _plain_json(obj):
            return True
    try:
        return canonical_json(obj) == data
    except FormatError:
        return False


def load_canonical_object(data: bytes, *, what: str) -> dict[str, Any]:
    """Parse ``data`` as a JSON object that is exactly its own RFC 8785 encoding.

    Errors (all :class:`FormatError`) read ``"<what>: payload: not valid JSON (…)"``,
    ``"<what>: payload: expected a JSON object, got list"``, ``"<what>: payload: duplicate
    JSON key 'x'"`` or ``"<what>: payload is not canonical JSON (RFC 8785)"``.
    """
    where = f"{what}: payload"
    numbers = _Numbers()
    try:
        # Decoding as UTF-8 first refuses the UTF-16/32 texts json.loads(bytes) would accept.
        obj = json.loads(
            data.decode("utf-8"), parse_float=numbers.parse_float, parse_int=numbers.parse_int
        )
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FormatError(f"{where}: not valid JSON ({exc})") from exc
    except RecursionError as exc:
        raise FormatError(f"{where}: JSON nested too deeply") from exc
    except ValueError as exc:  # int() refuses integers of more than 4300 digits
        raise FormatError(f"{where}: a number is out of range ({exc})") from exc
    if not isinstance(obj, dict):
        raise FormatError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if not _is_canonical(obj, data, numbers):
        loads_strict(data, what=where)  # names a duplicated key, the likeliest forgery
        raise FormatError(f"{what}: payload is not canonical JSON (RFC 8785)")
    return obj
