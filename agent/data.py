"""Tabular data access for the checks: CSV and Parquet, read in column chunks.

The checks never see a file; they see NumPy arrays. This module is the only place that opens
validation data, and it keeps these invariants:

* columns are read by name and only the columns asked for; a missing column is a
  :class:`~trust.errors.DataError` naming the file, the column and the columns that exist;
* a file with no rows is a ``DataError`` (a check on nothing must not pass by default);
* a file whose header names a column twice is a ``DataError`` naming that column, whatever
  columns are read: which of the two a check would see is an accident of the reader;
* only scalar columns are read: a list, struct or map column asked for is a ``DataError``
  naming the file, the column and its type, before any row is read;
* text must be UTF-8: a CSV header or value (or a Parquet binary value read as text) that is
  not is a ``DataError`` naming the file, the column and the data row (counted from 1, the
  header not counted) and showing the bytes;
* numeric columns arrive as ``float64``/``int64``/``bool`` arrays (integers with nulls become
  ``float64`` with NaN); string and dictionary columns arrive as ``object`` arrays of ``str``
  with ``None`` for nulls;
* chunks never exceed ``chunk_rows`` rows, so memory stays bounded by the chunk size times
  the number of requested columns whatever the file size;
* in CSV only an empty field is null: ``NA``, ``null``, ``N/A`` are text values, as in
  Parquet, so both formats give the same evidence; a column Arrow typed ``int64`` from the
  first block that later holds a fraction is re-read as ``float64`` (not refused);
* a sensitive-feature value that is null or NaN becomes the explicit group
  :data:`MISSING_GROUP`; it is never dropped;
* :func:`read_column` and :class:`ColumnReader` give one whole column at a time, for checks
  that need all rows of a column (drift): memory is that column, not the file.

Format dispatch is by suffix: ``.csv`` (optionally ``.csv.gz``), ``.parquet`` or ``.pq``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from trust.errors import DataError

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "MISSING_GROUP",
    "ColumnKind",
    "iter_chunks",
    "read_columns",
    "read_column",
    "ColumnReader",
    "schema_of",
    "row_count",
    "file_format",
    "to_numpy",
    "require_numeric",
    "binary_labels",
    "group_labels",
    "factorize",
]

DEFAULT_CHUNK_ROWS = 262_144
MISSING_GROUP = "missing"
ColumnKind = Literal["num", "cat"]

_CSV_BLOCK_BYTES = 1 << 24  # 16 MiB of CSV text per block: big enough that type inference
# on the first block sees a representative sample, small enough to keep memory flat.


def file_format(path: str | os.PathLike[str]) -> Literal["csv", "parquet"]:
    """``"csv"`` or ``"parquet"`` from the file's suffix; a DataError for anything else."""
    name = str(path).lower()
    if name.endswith((".csv", ".csv.gz", ".csv.bz2")):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    raise DataError(
        f"{path}: unknown data format (expected a .csv or .parquet file)",
        hint="rename the file with its format's suffix",
    )


def _check_exists(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.exists():
        raise DataError(f"{path}: no such file")
    if p.is_dir():
        raise DataError(f"{path}: is a directory, expected a .csv or .parquet file")
    return p


def _open_csv(
    p: Path,
    columns: Sequence[str] | None,
    column_types: Mapping[str, pa.DataType] | None = None,
) -> pacsv.CSVStreamingReader:
    if p.stat().st_size == 0:
        raise DataError(f"{p}: file is empty")
    try:
        reader = pacsv.open_csv(
            p,
            read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK_BYTES),
            # Only an empty field is null: "NA", "null", "N/A" are real text values, as
            # they are in Parquet (numbers still read "nan" as NaN), so CSV and Parquet
            # give the same groups.
            convert_options=pacsv.ConvertOptions(
                include_columns=list(columns) if columns is not None else None,
                column_types=dict(column_types) if column_types else None,
                null_values=[""],
                strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise _csv_error(p, columns, exc) from None
    return reader


def _csv_error(p: Path, columns: Sequence[str] | None, exc: Exception) -> DataError:
    text = str(exc)
    if "Empty CSV file" in text:
        return DataError(f"{p}: file is empty")
    if columns is not None and ("include_columns" in text or "not found" in text):
        available = _csv_header(p)
        missing = [c for c in (columns or ()) if c not in available]
        if missing:
            return _missing_column(p, missing[0], available)
    first = text.splitlines()[0] if text else type(exc).__name__
    return DataError(f"{p}: cannot read CSV: {first}")


def _csv_header(p: Path) -> list[str]:
    try:
        reader = pacsv.open_csv(p, read_options=pacsv.ReadOptions(block_size=1 << 16))
    except (pa.ArrowInvalid, OSError):
        return []
    try:
        return list(reader.schema.names)
    except UnicodeDecodeError:  # Arrow keeps names as bytes; decoding them fails here
        raise _header_not_utf8(p) from None


def _header_not_utf8(p: Path) -> DataError:
    """The header's first byte that is not UTF-8, by offset in the (decompressed) file."""
    where = ""
    try:
        with pa.input_stream(str(p), compression="detect") as stream:
            line = stream.read(1 << 16).split(b"\n", 1)[0]
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = f" (byte 0x{line[exc.start]:02x} at offset {exc.start})"
    except (pa.ArrowInvalid, OSError):
        pass
    return DataError(f"{p}: the header line is not valid UTF-8{where}", hint=_UTF8_HINT)


_UTF8_HINT = "save the file as UTF-8, e.g. iconv -f latin1 -t utf-8 in.csv > out.csv"
_UTF8_HINT_PARQUET = "write string columns as UTF-8 text (Parquet STRING), not raw bytes"


def _utf8_hint(p: Path) -> str:
    """How to fix text that is not UTF-8: re-encode a CSV, rewrite a Parquet column."""
    return _UTF8_HINT_PARQUET if file_format(p) == "parquet" else _UTF8_HINT


def _missing_column(p: Path | str, column: str, available: Sequence[str]) -> DataError:
    shown = ", ".join(available[:30]) + (", ..." if len(available) > 30 else "")
    return DataError(
        f"{p}: no column '{column}' (available: {shown or 'none'})",
        hint="check the column name and its case",
    )


def _parquet_file(p: Path) -> pq.ParquetFile:
    if p.stat().st_size == 0:
        raise DataError(f"{p}: file is empty")
    try:
        return pq.ParquetFile(p)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{p}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None


def _check_columns(p: Path, wanted: Sequence[str] | None, available: Sequence[str]) -> None:
    _check_unique(p, available)
    if wanted is None:
        return
    have = set(available)
    for col in wanted:
        if col not in have:
            raise _missing_column(p, col, available)
    dupes = {c for c in wanted if list(wanted).count(c) > 1}
    if dupes:
        raise DataError(f"{p}: column '{sorted(dupes)[0]}' requested twice")


def _check_unique(p: Path, names: Sequence[str]) -> None:
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


def _check_scalar(p: Path, schema: pa.Schema, names: Sequence[str]) -> None:
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


class _Unconvertible(Exception):
    """An Arrow array this module cannot turn into values: why, and the first bad row."""

    def __init__(self, reason: str, index: int | None = None) -> None:
        super().__init__(reason)
        self.reason, self.index = reason, index


def to_numpy(array: pa.Array | pa.ChunkedArray) -> npt.NDArray[Any]:
    """One Arrow column as NumPy, following this module's dtype rules.

    A nested column, or binary data that is not UTF-8 text, is a :class:`DataError`.
    """
    try:
        return _to_numpy(array)
    except _Unconvertible as exc:
        row = "" if exc.index is None else f" (row {exc.index + 1})"
        raise DataError(f"column {exc.reason}{row}") from None


def _column_values(
    p: Path, name: str, array: pa.Array | pa.ChunkedArray, first_row: int
) -> npt.NDArray[Any]:
    """:func:`to_numpy` for column ``name`` of ``p`` whose first row is ``first_row``."""
    try:
        return _to_numpy(array)
    except _Unconvertible as exc:
        if exc.index is None:
            raise DataError(f"{p}: column '{name}' {exc.reason}") from None
        raise DataError(
            f"{p}: column '{name}', data row {first_row + exc.index + 1}: {exc.reason}",
            hint=_utf8_hint(p),
        ) from None


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


def _to_numpy(array: pa.Array | pa.ChunkedArray) -> npt.NDArray[Any]:
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
        raise _Unconvertible(f"has type {t}; only scalar columns can be read")
    # Dates, times, binary...: hand them over as strings so that they can still serve as
    # a categorical (for example a sensitive feature), never silently as numbers.
    try:
        text = array.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        if pa.types.is_binary(t) or pa.types.is_large_binary(t):
            bad = _first_not_utf8(array)
            if bad is not None:
                shown = bad[1][:40] + (b"..." if len(bad[1]) > 40 else b"")
                raise _Unconvertible(f"value {shown!r} is not valid UTF-8 text", bad[0]) from None
        raise _Unconvertible(f"has type {t}, which cannot be read as text ({exc})") from None
    return np.asarray(text.to_numpy(zero_copy_only=False), dtype=object)


def _kind(t: pa.DataType) -> ColumnKind:
    if pa.types.is_dictionary(t):
        return "cat"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "num"
    return "cat"


def _batch_to_dict(
    p: Path, batch: pa.RecordBatch, names: Sequence[str], first_row: int
) -> dict[str, npt.NDArray[Any]]:
    return {name: _column_values(p, name, batch.column(name), first_row) for name in names}


def iter_chunks(
    path: str | os.PathLike[str],
    columns: Sequence[str] | None = None,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Iterator[dict[str, npt.NDArray[Any]]]:
    """Yield ``{column: array}`` chunks of at most ``chunk_rows`` rows, in file order.

    ``columns=None`` reads every column. Raises :class:`DataError` for a missing file or
    column, an unreadable or empty file (no rows at all), or a CSV value that does not fit
    the type inferred for its column.
    """
    if chunk_rows <= 0:
        raise DataError(f"chunk_rows must be positive, got {chunk_rows}")
    p = _check_exists(path)
    fmt = file_format(p)
    total = 0
    if fmt == "parquet":
        pf = _parquet_file(p)
        names = list(pf.schema_arrow.names)
        _check_columns(p, columns, names)
        wanted = list(columns) if columns is not None else names
        _check_scalar(p, pf.schema_arrow, wanted)
        try:
            for batch in pf.iter_batches(batch_size=chunk_rows, columns=wanted):
                if batch.num_rows:
                    part = _batch_to_dict(p, batch, wanted, total)
                    total += batch.num_rows
                    yield part
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"{p}: cannot read Parquet: {str(exc).splitlines()[0]}") from None
    else:
        header = _csv_header(p)
        if not header:
            _open_csv(p, None)  # raises the precise reason (empty file, bad CSV)
        _check_columns(p, columns, header)
        widened: dict[str, pa.DataType] = {}
        reader = _open_csv(p, columns)
        wanted = list(columns) if columns is not None else list(reader.schema.names)
        skip = 0  # rows already yielded before a restart with a widened column
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except pa.ArrowInvalid as exc:
                if "invalid UTF8" in str(exc) and (bad := _column_of(exc, header)) is not None:
                    raise _csv_not_utf8(p, bad) from None
                name = _int_overflow_column(exc, header)
                if name is None or name in widened:
                    raise _csv_type_error(p, exc, header) from None
                # Arrow guessed int64 from the first block and a later value has a
                # fraction: read the column as float64 from the start, skip rows given.
                widened[name] = pa.float64()
                reader = _open_csv(p, columns, widened)
                skip = total
                continue
            if skip:
                drop = min(skip, batch.num_rows)
                batch = batch.slice(drop)
                skip -= drop
            for start in range(0, batch.num_rows, chunk_rows):
                part = batch.slice(start, chunk_rows)
                values = _batch_to_dict(p, part, wanted, total)
                total += part.num_rows
                yield values
    # Arrow's allocator keeps freed chunk buffers for reuse; hand them back to the system
    # so that what follows (sorting, drift) does not stack on a retained chunk-sized pool.
    pa.default_memory_pool().release_unused()
    if total == 0:
        raise DataError(f"{p}: file has no rows")


_CSV_COLUMN = re.compile(r"In CSV column #(\d+)")


def _csv_not_utf8(p: Path, name: str) -> DataError:
    """Arrow typed ``name`` as text from the first block and a later block is not UTF-8:
    Arrow names no row, so read the column again as bytes to find it (error path only)."""
    reader = _open_csv(p, [name], {name: pa.binary()})
    first_row = 0
    for batch in reader:
        try:
            _column_values(p, name, batch.column(0), first_row)
        except DataError as exc:
            return exc
        first_row += batch.num_rows
    return DataError(f"{p}: column '{name}' is not valid UTF-8 text", hint=_UTF8_HINT)


def _column_of(exc: Exception, header: Sequence[str]) -> str | None:
    m = _CSV_COLUMN.search(str(exc))
    if m is None or int(m.group(1)) >= len(header):
        return None
    return header[int(m.group(1))]


def _int_overflow_column(exc: Exception, header: Sequence[str]) -> str | None:
    """The column Arrow typed int64 from the first block if a later value is a float."""
    m = re.search(r"conversion error to int64: invalid value '([^']*)'", str(exc))
    if m is None:
        return None
    try:
        float(m.group(1))
    except ValueError:
        return None  # text in a numeric column: a real type error, reported as such
    return _column_of(exc, header)


def _csv_type_error(p: Path, exc: Exception, header: Sequence[str] = ()) -> DataError:
    # Arrow infers a CSV column's type from the first block; a later value that does not
    # fit (an "abc" in a numeric column) ends the stream. Name the column and the value.
    text = str(exc).splitlines()[0]
    name = _column_of(exc, header)
    if name is not None:
        text = _CSV_COLUMN.sub(f"in column '{name}'", text, count=1)
    return DataError(
        f"{p}: {text}",
        hint="a column's values must all have one type (numbers or text); clean the file",
    )


def read_column(path: str | os.PathLike[str], name: str) -> npt.NDArray[Any]:
    """One whole column as one array; same rules as :func:`read_columns`.

    Parquet stores columns apart, so only this column's pages are read, row group by row
    group, into one preallocated array: memory is the column plus one row group. (Object
    columns, and integer columns whose nulls only show up in a later row group, take the
    general path of :func:`read_columns`: parts, then one concatenation.) CSV is row
    oriented: the whole file is parsed, keeping only this column.
    """
    p = _check_exists(path)
    if file_format(p) != "parquet":
        return read_columns(p, [name])[name]
    pf = _parquet_file(p)
    _check_columns(p, [name], pf.schema_arrow.names)
    _check_scalar(p, pf.schema_arrow, [name])
    rows = int(pf.metadata.num_rows)
    out: npt.NDArray[Any] | None = None
    filled = 0
    first_row = 0  # of the row group, for errors that name a row
    parts: list[npt.NDArray[Any]] = []
    try:
        for group in range(pf.num_row_groups):
            column = pf.read_row_group(group, columns=[name]).column(0)
            part = _column_values(p, name, column, first_row)
            first_row += len(column)
            if not len(part):
                continue
            if out is None and not parts and part.dtype.kind != "O":
                out = np.empty(rows, dtype=part.dtype)
            if out is not None and part.dtype == out.dtype:
                out[filled : filled + len(part)] = part
                filled += len(part)
                continue
            if out is not None:  # the dtype changed: fall back to parts + _concat's rules
                parts.append(out[:filled])
                out = None
            parts.append(part)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{p}: cannot read Parquet: {str(exc).splitlines()[0]}") from None
    finally:
        pa.default_memory_pool().release_unused()
    if out is not None and filled == rows:
        return out
    if out is not None:
        parts.append(out[:filled])
    if not parts or not sum(len(a) for a in parts):
        raise DataError(f"{p}: file has no rows")
    return _concat(parts)


def read_columns(
    path: str | os.PathLike[str], columns: Sequence[str] | None = None
) -> dict[str, npt.NDArray[Any]]:
    """The whole file (only ``columns``) as ``{column: array}``; same rules as iter_chunks."""
    parts: dict[str, list[npt.NDArray[Any]]] = {}
    for chunk in iter_chunks(path, columns, chunk_rows=1 << 22):
        for name, arr in chunk.items():
            parts.setdefault(name, []).append(arr)
    out: dict[str, npt.NDArray[Any]] = {}
    for name in list(parts):  # pop as we go: peak memory is the data plus one column
        out[name] = _concat(parts.pop(name))
    return out


class ColumnReader(Mapping[str, npt.NDArray[Any]]):
    """A file's columns as a read-only mapping that reads one whole column per lookup.

    ``reader[name]`` reads that column alone (same rules as :func:`read_columns`) and keeps
    no reference to it, so a caller that handles one column at a time, such as
    :func:`agent.checks.drift.drift_evidence`, holds one column in memory, not the file.
    Parquet is columnar: a lookup reads only that column's pages. CSV is not: each lookup
    parses the whole file again (keeping only the column), trading time for flat memory.
    Missing columns are reported when the reader is built, naming the file.
    """

    def __init__(self, path: str | os.PathLike[str], columns: Sequence[str] | None = None) -> None:
        """Check the file and the ``columns`` (default: all, in file order) exist."""
        self.path = _check_exists(path)
        schema = _arrow_schema(self.path)
        available = list(schema.names)
        _check_columns(self.path, columns, available)
        self._names = tuple(columns) if columns is not None else tuple(available)
        _check_scalar(self.path, schema, self._names)

    def __getitem__(self, name: str) -> npt.NDArray[Any]:
        """The whole column ``name`` as one array (read now, not cached)."""
        if name not in self._names:
            raise KeyError(name)
        return read_column(self.path, name)

    def __contains__(self, name: object) -> bool:
        """Whether ``name`` is one of the columns, without reading it."""
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        """Column names in order."""
        return iter(self._names)

    def __len__(self) -> int:
        """Number of columns."""
        return len(self._names)


def _concat(arrs: list[npt.NDArray[Any]]) -> npt.NDArray[Any]:
    if len(arrs) == 1:
        return arrs[0]
    kinds = {a.dtype.kind for a in arrs}
    if "O" in kinds:
        return np.concatenate([a.astype(object) for a in arrs])
    if len(kinds) > 1:  # int chunk then float chunk (nulls appeared later): widen
        return np.concatenate([a.astype(np.float64) for a in arrs])
    return np.concatenate(arrs)


def schema_of(path: str | os.PathLike[str]) -> dict[str, ColumnKind]:
    """``{column: "num" | "cat"}`` for every column, in file order, without reading the rows.

    Integers and floats are ``"num"``; strings, dictionaries, booleans and everything else
    are ``"cat"``. For CSV the types are those Arrow infers from the first block.
    """
    schema = _arrow_schema(_check_exists(path))
    return {f.name: _kind(f.type) for f in schema}


def _arrow_schema(p: Path) -> pa.Schema:
    """The file's Arrow schema (CSV: as inferred from the first block); names unique."""
    if file_format(p) == "parquet":
        schema = _parquet_file(p).schema_arrow
        _check_unique(p, schema.names)
        return schema
    _check_unique(p, _csv_header(p))
    return _open_csv(p, None).schema


def row_count(path: str | os.PathLike[str]) -> int | None:
    """Number of rows if known without a scan (Parquet metadata); ``None`` for CSV."""
    p = _check_exists(path)
    if file_format(p) == "parquet":
        return int(_parquet_file(p).metadata.num_rows)
    return None


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


def _group_name(v: Any) -> str:
    if v is None:
        return MISSING_GROUP
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return MISSING_GROUP
        if float(v).is_integer():
            return str(int(v))
        return repr(float(v))
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, np.generic):
        return str(v.item())
    return str(v)


def factorize(values: npt.NDArray[Any]) -> tuple[npt.NDArray[np.int64], list[str]]:
    """Integer codes and their group names for one sensitive-feature chunk.

    Codes index into the returned names; names are strings (integral floats print as
    integers, booleans as ``true``/``false``); null and NaN map to :data:`MISSING_GROUP`.
    Uses Arrow's hash-based dictionary encoding, linear in the chunk length.
    """
    if values.dtype.kind in "iu" and len(values):
        lo, hi = int(values.min()), int(values.max())
        if hi - lo < 1 << 16:  # small integer range: a lookup table beats hashing
            present = np.flatnonzero(np.bincount(values - lo, minlength=hi - lo + 1))
            lut = np.full(hi - lo + 1, -1, dtype=np.int64)
            lut[present] = np.arange(len(present))
            return lut[values - lo], [str(int(x) + lo) for x in present]
    arr = pa.array(values, from_pandas=True)
    encoded = pc.dictionary_encode(arr, null_encoding="encode")
    assert isinstance(encoded, pa.DictionaryArray)
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    names = [_group_name(v) for v in encoded.dictionary.to_pylist()]
    if len(set(names)) != len(names):
        # Distinct raw values that print the same (1 and 1.0, None and NaN): merge them.
        uniq: dict[str, int] = {}
        remap = np.array([uniq.setdefault(n, len(uniq)) for n in names], dtype=np.int64)
        return remap[codes], list(uniq)
    return codes, names


def group_labels(values: npt.NDArray[Any]) -> npt.NDArray[np.object_]:
    """Sensitive-feature values as group-name strings (null/NaN become ``"missing"``)."""
    codes, names = factorize(values)
    return np.asarray(names, dtype=object)[codes] if len(values) else np.empty(0, dtype=object)
