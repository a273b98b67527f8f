"""The reference-profile file format: a :class:`~agent.checks.profile.ReferenceProfile` as bytes.

The document is RFC 8785 canonical JSON::

    {"format": "warden.reference-profile", "version": 1, "sketch_capacity": …, "count_cap": …,
     "columns": [{"name", "dtype", "column_type", "n", "dropped", "counts": [[value, count]…]
                  | null, "numeric": {"min", "max", "mean", "m2", "sketch": {"exact",
                  "levels", "points", "values_f8le", "weights_i8le"} | null}}]}

``numeric`` is present for non-string columns only; sketch arrays are base64 of little-endian
float64 / int64.

Invariants: the same profile always encodes to the same bytes (:func:`profile_to_bytes`);
decoding (:func:`profile_from_bytes`) checks every field — format, version, types, counts that
add up to ``n`` without a repeated value, sketch weights that sum to ``n`` over sorted values —
and any defect is a :class:`~trust.errors.FormatError` naming the source and the column, so a
tampered or truncated file never becomes a profile. Pure: bytes in, bytes out, no file I/O
(reading files is :mod:`agent.checks.files`).
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from numpy.typing import NDArray

from agent.checks.profile import (
    COUNT_CAP,
    DTYPES,
    SKETCH_CAPACITY,
    ColumnProfile,
    ReferenceProfile,
    count_order,
)
from trust.canonical import canonical_json, loads_object
from trust.errors import FormatError

__all__ = ["FORMAT", "VERSION", "profile_to_dict", "profile_to_bytes", "profile_from_bytes"]

FORMAT = "warden.reference-profile"
VERSION = 1

FloatArray = NDArray[np.float64]


def _b64(arr: NDArray[Any], dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(arr, dtype=dtype).tobytes()).decode("ascii")


def _unb64(text: Any, dtype: str, what: str) -> NDArray[Any]:
    if not isinstance(text, str):
        raise FormatError(f"{what}: expected a base64 string")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise FormatError(f"{what}: bad base64 ({exc})") from exc
    if len(raw) % 8:
        raise FormatError(f"{what}: length {len(raw)} is not a multiple of 8 bytes")
    return np.frombuffer(raw, dtype=dtype).copy()


def profile_to_dict(profile: ReferenceProfile) -> dict[str, Any]:
    """The JSON document of ``profile`` (what :func:`profile_to_bytes` encodes)."""
    cols = []
    for c in profile.columns:
        d: dict[str, Any] = {
            "name": c.name,
            "dtype": c.dtype,
            "column_type": c.column_type,
            "n": c.n,
            "dropped": c.dropped,
            "counts": None if c.counts is None else [[k, v] for k, v in c.counts],
        }
        if c.dtype != "str":
            sketch = None
            if c.sketch_values is not None and c.sketch_weights is not None:
                sketch = {
                    "exact": c.sketch_exact,
                    "levels": c.sketch_levels,
                    "points": len(c.sketch_values),
                    "values_f8le": _b64(c.sketch_values, "<f8"),
                    "weights_i8le": _b64(c.sketch_weights, "<i8"),
                }
            d["numeric"] = {
                "min": c.minimum,
                "max": c.maximum,
                "mean": c.mean,
                "m2": c.m2,
                "sketch": sketch,
            }
        cols.append(d)
    return {
        "format": FORMAT,
        "version": VERSION,
        "sketch_capacity": SKETCH_CAPACITY,
        "count_cap": COUNT_CAP,
        "columns": cols,
    }


def profile_to_bytes(profile: ReferenceProfile) -> bytes:
    """Canonical (RFC 8785) JSON bytes: the same profile always gives the same bytes."""
    return canonical_json(profile_to_dict(profile))


def profile_from_bytes(data: bytes, *, what: str = "profile") -> ReferenceProfile:
    """Parse and validate a saved profile; any defect is a :class:`FormatError` naming ``what``."""
    doc = loads_object(data, what=what)
    if doc.get("format") != FORMAT:
        raise FormatError(f"{what}: field 'format' is {doc.get('format')!r}, not {FORMAT!r}")
    if doc.get("version") != VERSION:
        raise FormatError(
            f"{what}: field 'version' is {doc.get('version')!r}; this Warden reads {VERSION}"
        )
    raw_cols = doc.get("columns")
    if not isinstance(raw_cols, list) or not raw_cols:
        raise FormatError(f"{what}: field 'columns' must be a non-empty list")
    return ReferenceProfile(
        tuple(_column_from_dict(c, f"{what}: columns[{i}]") for i, c in enumerate(raw_cols))
    )


def _field(d: dict[str, Any], key: str, types: type | tuple[type, ...], what: str) -> Any:
    if key not in d:
        raise FormatError(f"{what}: missing field {key!r}")
    v = d[key]
    if not isinstance(v, types) or (isinstance(v, bool) and bool not in _as_tuple(types)):
        raise FormatError(f"{what}: field {key!r} has the wrong type ({type(v).__name__})")
    return v


def _as_tuple(t: type | tuple[type, ...]) -> tuple[type, ...]:
    return t if isinstance(t, tuple) else (t,)


def _column_from_dict(d: Any, what: str) -> ColumnProfile:
    if not isinstance(d, dict):
        raise FormatError(f"{what}: expected an object")
    name = _field(d, "name", str, what)
    what = f"{what} ({name!r})"
    dtype = _field(d, "dtype", str, what)
    if dtype not in DTYPES:
        raise FormatError(f"{what}: field 'dtype' is {dtype!r}, not one of {DTYPES}")
    ctype = d.get("column_type")
    if ctype not in (None, "num", "cat"):
        raise FormatError(f"{what}: field 'column_type' is {ctype!r}")
    n = _field(d, "n", int, what)
    dropped = _field(d, "dropped", int, what)
    if n <= 0 or dropped < 0:
        raise FormatError(f"{what}: 'n' must be positive and 'dropped' non-negative")
    raw_counts = d.get("counts")
    counts: tuple[tuple[Any, int], ...] | None = None
    if raw_counts is not None:
        if not isinstance(raw_counts, list):
            raise FormatError(f"{what}: field 'counts' must be a list of [value, count]")
        conv = {"float": float, "int": int, "bool": bool, "str": str}[dtype]
        pairs = []
        for pair in raw_counts:
            if (
                not isinstance(pair, list)
                or len(pair) != 2
                or not isinstance(pair[1], int)
                or pair[1] <= 0
            ):
                raise FormatError(f"{what}: bad counts entry {pair!r}")
            pairs.append((conv(pair[0]), pair[1]))
        if sum(c for _, c in pairs) != n:
            raise FormatError(f"{what}: counts add up to {sum(c for _, c in pairs)}, not n={n}")
        pairs.sort(key=lambda kv: count_order(kv[0]))
        if len({k for k, _ in pairs}) != len(pairs):
            raise FormatError(f"{what}: counts repeat a value")
        counts = tuple(pairs)
    elif dtype == "str":
        raise FormatError(f"{what}: a string column needs 'counts'")
    if dtype == "str":
        return ColumnProfile(name, dtype, ctype, n, dropped, counts)
    num = _field(d, "numeric", dict, what)
    values: FloatArray | None = None
    weights: NDArray[np.int64] | None = None
    sketch_exact, sketch_levels = True, 0
    sk = num.get("sketch")
    if sk is None:
        if counts is None:
            raise FormatError(f"{what}: a numerical column needs 'counts' or a 'sketch'")
    else:
        sk = _field(num, "sketch", dict, f"{what} numeric")
        values = _unb64(sk.get("values_f8le"), "<f8", f"{what} sketch values")
        weights = _unb64(sk.get("weights_i8le"), "<i8", f"{what} sketch weights")
        if len(values) != len(weights) or len(values) == 0:
            raise FormatError(f"{what}: sketch values and weights differ in length or are empty")
        if int(weights.sum()) != n or np.any(weights <= 0) or np.any(np.diff(values) < 0):
            raise FormatError(
                f"{what}: sketch is inconsistent (weights must sum to n, values sorted)"
            )
        sketch_exact = bool(_field(sk, "exact", bool, f"{what} sketch"))
        sketch_levels = int(_field(sk, "levels", int, f"{what} sketch"))
    nums = {}
    for key in ("min", "max", "mean", "m2"):
        v = _field(num, key, (int, float), f"{what} numeric")
        nums[key] = float(v)
    return ColumnProfile(
        name=name,
        dtype=dtype,
        column_type=ctype,
        n=n,
        dropped=dropped,
        counts=counts,
        minimum=nums["min"],
        maximum=nums["max"],
        mean=nums["mean"],
        m2=nums["m2"],
        sketch_values=values,
        sketch_weights=weights,
        sketch_exact=sketch_exact,
        sketch_levels=sketch_levels,
    )
