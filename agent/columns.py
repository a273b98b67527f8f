"""Column typing: Arrow columns to NumPy arrays, and the checks on a file's column names.

No file is opened here (:mod:`agent.data` reads the files and hands over Arrow arrays and
schemas); this module decides what a column becomes and which headers are refused. It keeps
these invariants:

* numeric columns arrive as ``float64``/``int64``/``bool`` arrays (integers with nulls become
  ``float64`` with NaN); string and dictionary columns arrive as ``object`` arrays of ``str``
  with ``None`` for nulls; dates, times and binary values arrive as ``object`` arrays of text
  (usable as categories, never silently as numbers);
* binary data that is not UTF-8 text is refused (:class:`Unconvertible` with the index of the
  first bad value, so the reader can name the data row), never decoded with replacement;
* only scalar columns are read: a list, struct or map column is refused by
  :func:`check_scalar` before any row is read (and by the conversion itself as a backstop);
* a header that names a column twice is refused by :func:`check_unique` whatever columns are
  read: which of the two a check would see is an accident of the reader;
* a requested column that does not exist is a :class:`~trust.errors.DataError` naming the
  file, the column and the columns that exist;
* :func:`concat` joins chunks of one column under the same rules: an ``int64`` chunk followed
  by a ``float64`` chunk (nulls that showed up later) widens to ``float64``, any ``object``
  chunk makes the whole column ``object``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from trust.errors import DataError

__all__ = [
    "ColumnKind",
    "Unconvertible",
    "array_values",
    "to_numpy",
    "column_kind",
    "concat",
    "check_columns",
    "check_unique",
    "check_scalar",
    "missing_column",
]

ColumnKind = Literal["num", "cat"]


def missing_column(p: Path | str, column: str, available: Sequence[str]) -> DataError:
    """The error for a requested ``column`` that ``p`` lacks, listing (some of) ``available``."""
    shown = ", ".join(available[:30]) + (", ..." if len(available) > 30 else "")
    return DataError(
        f"{p}: no column '{column}' (available: {shown or 'none'})",
        hint="check the column name and its case",
    )


def check_columns(p: Path, wanted: Sequence[str] | None, available: Sequence[str]) -> None:
    """Refuse a repeated header name, a ``wanted`` column not in ``available``, or one
    requested twice; ``wanted=None`` means every column."""
    check_unique(p, available)
    if wanted is None:
        return
    have = set(available)
    for col in wanted:
        if col not in have:
            raise missing_column(p, col, available)
    dupes = {c for c in wanted if list(wanted).count(c) > 1}
    if dupes:
        raise DataError(f"{p}: column '{sorted(dupes)[0]}' requested twice")


def check_unique(p: Path, names: Sequence[str]) -> None:
    """Refuse a file that names a column twice: a reader picks one of them silently."""
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    for name, n in counts.items():
        if n > 1:
            where = ", ".join(str(i + 1) for i, c in enumerate(names) if c == name)
            raise DataError(
                f"{p}: column '{name}' appears {n} times in the header (columns {where}); "
                "Warden cannot tell which one to read",
                hint="rename or drop the duplicate columns",
            )


def check_scalar(p: Path, schema: pa.Schema, names: Sequence[str]) -> None:
    """Refuse a list, struct or map column before reading it: it has no single value."""
    for name in names:
        t = schema.field(name).type
        if pa.types.is_nested(t):
            raise DataError(
                f"{p}: column '{name}' has type {t}; label, prediction, score, sensitive-"
                "feature and drift columns must be scalar (numbers, text, booleans, dates)",
                hint="flatten the column into scalar ones, or leave it out "
                "(--sensitive, --drift-columns, --columns)",
            )


class Unconvertible(Exception):
    """An Arrow array this module cannot turn into values: why, and the first bad row.

    ``index`` is the position of the offending value within the array (``None`` when the
    whole column is at fault, e.g. its type); the reader adds the file and the row offset.
    """

    def __init__(self, reason: str, index: int | None = None) -> None:
        """Keep the reason and the index of the first bad value, if one is to blame."""
        super().__init__(reason)
        self.reason, self.index = reason, index


def to_numpy(array: pa.Array | pa.ChunkedArray) -> npt.NDArray[Any]:
    """One Arrow column as NumPy, following this module's dtype rules.

    A nested column, or binary data that is not UTF-8 text, is a :class:`DataError`.
    """
    try:
        return array_values(array)
    except Unconvertible as exc:
        row = "" if exc.index is None else f" (row {exc.index + 1})"
        raise DataError(f"column {exc.reason}{row}") from None


def _first_not_utf8(array: pa.Array) -> tuple[int, bytes] | None:
    """Index and bytes of the first value that is not UTF-8 (error path only: a loop)."""
    for i, v in enumerate(array.to_pylist()):
        if v is None:
            continue
        try:
            v.decode("utf-8")
        except UnicodeDecodeError:
            return i, bytes(v)
    return None


def array_values(array: pa.Array | pa.ChunkedArray) -> npt.NDArray[Any]:
    """:func:`to_numpy` that raises :class:`Unconvertible` (for a caller to name the row)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    t = array.type
    if pa.types.is_dictionary(t):
        array = array.dictionary_decode()
        t = array.type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return np.asarray(array.to_numpy(zero_copy_only=False), dtype=object)
    if pa.types.is_boolean(t):
        if array.null_count:
            return np.asarray(array.to_numpy(zero_copy_only=False), dtype=object)
        return np.asarray(array.to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_integer(t):
        if array.null_count:
            return np.asarray(array.cast(pa.float64()).to_numpy(zero_copy_only=False))
        return np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.int64)
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return np.asarray(array.cast(pa.float64()).to_numpy(zero_copy_only=False))
    if pa.types.is_null(t):
        return np.full(len(array), None, dtype=object)
    if pa.types.is_nested(t):  # callers check the schema first; this is the backstop
        raise Unconvertible(f"has type {t}; only scalar columns can be read")
    # Dates, times, binary...: hand them over as strings so that they can still serve as
    # a categorical (for example a sensitive feature), never silently as numbers.
    try:
        text = array.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        if pa.types.is_binary(t) or pa.types.is_large_binary(t):
            bad = _first_not_utf8(array)
            if bad is not None:
                shown = bad[1][:40] + (b"..." if len(bad[1]) > 40 else b"")
                raise Unconvertible(f"value {shown!r} is not valid UTF-8 text", bad[0]) from None
        raise Unconvertible(f"has type {t}, which cannot be read as text ({exc})") from None
    return np.asarray(text.to_numpy(zero_copy_only=False), dtype=object)


def column_kind(t: pa.DataType) -> ColumnKind:
    """``"num"`` for integer, floating and decimal types; ``"cat"`` for everything else."""
    if pa.types.is_dictionary(t):
        return "cat"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "num"
    return "cat"


def concat(arrs: list[npt.NDArray[Any]]) -> npt.NDArray[Any]:
    """Chunks of one column as one array (see the module docstring for the widening rule)."""
    if len(arrs) == 1:
        return arrs[0]
    kinds = {a.dtype.kind for a in arrs}
    if "O" in kinds:
        return np.concatenate([a.astype(object) for a in arrs])
    if len(kinds) > 1:  # int chunk then float chunk (nulls appeared later): widen
        return np.concatenate([a.astype(np.float64) for a in arrs])
    return np.concatenate(arrs)
