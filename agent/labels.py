"""Label, prediction and numeric columns: validated and typed for the checks.

Pure functions over NumPy arrays (no file is read here; :mod:`agent.data` reads the files and
re-exports these names). ``source`` and ``column`` only name the file and column in errors.
Invariants:

* :func:`require_numeric` gives ``float64`` or a :class:`~trust.errors.DataError` naming the
  first value that is not a number (``None`` becomes NaN);
* :func:`binary_labels` gives 0/1 ``int8``: numbers 0/1, booleans, and the strings ``0/1``,
  ``true/false``, ``yes/no`` (any case, surrounding blanks ignored), or with ``pos_label`` any
  two-valued column; a null, NaN or third value is a DataError naming the file, the column
  and the value, never a guess;
* the distinct values met are carried across chunks in ``seen``, so a third value in a later
  chunk (or in the prediction column, when both share ``seen``) is refused as well;
* the error's hint fits the case: two values that are not 0/1 call for ``--pos-label``, three
  or more for ``--task multiclass``, a missing value for dropping or filling the row.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import numpy.typing as npt

from trust.errors import DataError

__all__ = ["require_numeric", "binary_labels"]


def require_numeric(
    values: npt.NDArray[Any], *, column: str, source: str | os.PathLike[str] = "data"
) -> npt.NDArray[np.float64]:
    """``values`` as float64; DataError naming the first non-numeric value otherwise."""
    if values.dtype.kind in "iufb":
        return values.astype(np.float64, copy=False)
    for v in values:
        if v is None:
            continue
        try:
            float(v)
        except (TypeError, ValueError):
            raise DataError(
                f"{source}: column '{column}' must be numeric, found value {v!r}"
            ) from None
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}


def binary_labels(
    values: npt.NDArray[Any],
    *,
    column: str,
    source: str | os.PathLike[str] = "data",
    pos_label: Any = None,
    seen: set[str] | None = None,
) -> npt.NDArray[np.int8]:
    """Validate a binary label or prediction column and return it as 0/1 ``int8``.

    Accepted: numbers 0/1, booleans, and the strings ``0/1``, ``true/false``, ``yes/no``.
    With ``pos_label`` any two-valued column is accepted; ``pos_label`` becomes 1. A null,
    NaN or third value is a DataError naming the file, column and value. ``seen`` carries
    the distinct values (as text) across chunks, and columns, so that a third value in a
    later chunk is refused too; pass the same set for every chunk. The error's hint fits
    the case: two values that are not 0/1 call for ``--pos-label``, three or more for
    ``--task multiclass``.
    """
    if pos_label is not None:
        _check_two_values(values, column, source, seen if seen is not None else set())
        if values.dtype.kind in "iufb":
            try:
                pos = float(pos_label)
            except (TypeError, ValueError):
                raise DataError(
                    f"{source}: pos_label {pos_label!r} does not match column '{column}' (numeric)"
                ) from None
            out = (values == pos).astype(np.int8)
        else:
            out = (values.astype(str) == str(pos_label)).astype(np.int8)
        _check_no_nulls(values, column, source)
        return np.asarray(out, dtype=np.int8)
    out = _zero_one(values, column, source, seen)
    if seen is not None and len(out):
        # Which of 0/1 occurred, so that a later chunk's third value is counted as such.
        if out.any():
            seen.add("1")
        if not out.all():
            seen.add("0")
    return out


def _zero_one(
    values: npt.NDArray[Any], column: str, source: str | os.PathLike[str], seen: set[str] | None
) -> npt.NDArray[np.int8]:
    kind = values.dtype.kind
    if kind == "b":
        return values.astype(np.int8)
    if kind in "iu":
        bad = (values != 0) & (values != 1)
        if bad.any():
            raise _not_binary(values[np.argmax(bad)], column, source, values, seen)
        return values.astype(np.int8)
    if kind == "f":
        bad = ~((values == 0.0) | (values == 1.0))
        if bad.any():
            raise _not_binary(values[np.argmax(bad)], column, source, values, seen)
        return values.astype(np.int8)
    out = np.empty(len(values), dtype=np.int8)
    for i, v in enumerate(values):
        if isinstance(v, (bool, np.bool_)):
            out[i] = int(v)
            continue
        s = str(v).strip().lower() if v is not None else None
        if s in _TRUE:
            out[i] = 1
        elif s in _FALSE:
            out[i] = 0
        else:
            raise _not_binary(v, column, source, values, seen)
    return out


def _value_text(v: Any) -> str:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v)


def _check_two_values(
    values: npt.NDArray[Any], column: str, source: str | os.PathLike[str], seen: set[str]
) -> None:
    """Add the chunk's distinct values to ``seen``; a third distinct value is a DataError."""
    distinct = values if values.dtype.kind == "O" else np.unique(values)
    for v in dict.fromkeys(distinct.tolist()):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue  # nulls are reported by _check_no_nulls
        text = _value_text(v)
        if text in seen:
            continue
        if len(seen) >= 2:
            have = ", ".join(repr(x) for x in sorted(seen))
            raise DataError(
                f"{source}: column '{column}' has a third value {text!r} "
                f"(besides {have}); a binary label has two",
                hint="use --task multiclass, or map the column to two values",
            )
        seen.add(text)


def _check_no_nulls(values: npt.NDArray[Any], column: str, source: str | os.PathLike[str]) -> None:
    if values.dtype.kind == "f" and np.isnan(values).any():
        raise _not_binary(np.nan, column, source)
    if values.dtype.kind == "O" and any(v is None for v in values):
        raise _not_binary(None, column, source)


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, (float, np.floating)) and math.isnan(v))


def _distinct_labels(values: npt.NDArray[Any], seen: set[str] | None) -> list[str]:
    """The distinct non-missing values of a label chunk (and earlier chunks), as text;
    ``true``/``yes``... count as ``1`` and ``false``/``no``... as ``0`` (error path only)."""
    out = dict.fromkeys(seen or ())
    for v in dict.fromkeys((values if values.dtype.kind == "O" else np.unique(values)).tolist()):
        if _is_missing(v):
            continue
        text = _value_text(v)
        low = text.strip().lower()
        out.setdefault("1" if low in _TRUE else "0" if low in _FALSE else text)
    return list(out)


def _not_binary(
    value: Any,
    column: str,
    source: str | os.PathLike[str],
    values: npt.NDArray[Any] | None = None,
    seen: set[str] | None = None,
) -> DataError:
    if _is_missing(value):
        return DataError(
            f"{source}: column '{column}' must be binary (0/1), found a missing value",
            hint="every row needs a label and a prediction: drop or fill the rows without",
        )
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    distinct = _distinct_labels(values, seen) if values is not None else []
    if len(distinct) >= 3:
        shown = ", ".join(repr(v) for v in distinct[:5]) + (", ..." if len(distinct) > 5 else "")
        hint = (
            f"the column has {len(distinct)} values "
            f"({shown}): use --task multiclass, or map it to two values"
        )
    else:
        hint = "pass --pos-label to name the positive class of a two-valued column"
    return DataError(
        f"{source}: column '{column}' must be binary (0/1), found value {value!r}", hint=hint
    )
