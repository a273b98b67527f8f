"""Tabular data access for the checks: CSV and Parquet, read in column chunks.

The checks never see a file; they see NumPy arrays. This module is the only place that opens
validation data (format dispatch, chunked iteration, whole-column reads); what a column
becomes is decided in :mod:`agent.columns`, labels are validated in :mod:`agent.labels` and
sensitive values become groups in :mod:`agent.groups` (all re-exported here, so
``from agent.data import binary_labels`` keeps working). It keeps these invariants:

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
  with ``None`` for nulls (:mod:`agent.columns`);
* chunks never exceed ``chunk_rows`` rows, so memory stays bounded by the chunk size times
  the number of requested columns whatever the file size;
* in CSV only an empty field is null: ``NA``, ``null``, ``N/A`` are text values, as in
  Parquet, so both formats give the same evidence; a column Arrow typed ``int64`` from the
  first block that later holds a fraction is re-read as ``float64`` (not refused);
* a sensitive-feature value that is null or NaN becomes the explicit group
  :data:`MISSING_GROUP`; it is never dropped (:mod:`agent.groups`);
* :func:`read_column` and :class:`ColumnReader` give one whole column at a time, for checks
  that need all rows of a column (drift): memory is that column, not the file.

Format dispatch is by suffix: ``.csv`` (optionally ``.csv.gz``), ``.parquet`` or ``.pq``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from agent.columns import (
    ColumnKind,
    Unconvertible,
    array_values,
    check_columns,
    check_scalar,
    check_unique,
    column_kind,
    concat,
    missing_column,
    to_numpy,
)
from agent.formats import data_format
from agent.groups import MISSING_GROUP, factorize, group_labels
from agent.labels import binary_labels, require_numeric
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

_CSV_BLOCK_BYTES = 1 << 24  # 16 MiB of CSV text per block: big enough that type inference
# on the first block sees a representative sample, small enough to keep memory flat.


def file_format(path: str | os.PathLike[str]) -> Literal["csv", "parquet"]:
    """``"csv"`` or ``"parquet"`` from the file's suffix; a DataError for anything else."""
    fmt = data_format(str(path))
    if fmt is not None:
        return fmt
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
            return missing_column(p, missing[0], available)
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


def _parquet_file(p: Path) -> pq.ParquetFile:
    if p.stat().st_size == 0:
        raise DataError(f"{p}: file is empty")
    try:
        return pq.ParquetFile(p)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{p}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None


def _column_values(
    p: Path, name: str, array: pa.Array | pa.ChunkedArray, first_row: int
) -> npt.NDArray[Any]:
    """:func:`to_numpy` for column ``name`` of ``p`` whose first row is ``first_row``."""
    try:
        return array_values(array)
    except Unconvertible as exc:
        if exc.index is None:
            raise DataError(f"{p}: column '{name}' {exc.reason}") from None
        raise DataError(
            f"{p}: column '{name}', data row {first_row + exc.index + 1}: {exc.reason}",
            hint=_utf8_hint(p),
        ) from None


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
        check_columns(p, columns, names)
        wanted = list(columns) if columns is not None else names
        check_scalar(p, pf.schema_arrow, wanted)
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
        check_columns(p, columns, header)
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
    check_columns(p, [name], pf.schema_arrow.names)
    check_scalar(p, pf.schema_arrow, [name])
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
            if out is not None:  # the dtype changed: fall back to parts + concat's rules
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
    return concat(parts)


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
        out[name] = concat(parts.pop(name))
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
        check_columns(self.path, columns, available)
        self._names = tuple(columns) if columns is not None else tuple(available)
        check_scalar(self.path, schema, self._names)

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


def schema_of(path: str | os.PathLike[str]) -> dict[str, ColumnKind]:
    """``{column: "num" | "cat"}`` for every column, in file order, without reading the rows.

    Integers and floats are ``"num"``; strings, dictionaries, booleans and everything else
    are ``"cat"``. For CSV the types are those Arrow infers from the first block.
    """
    schema = _arrow_schema(_check_exists(path))
    return {f.name: column_kind(f.type) for f in schema}


def _arrow_schema(p: Path) -> pa.Schema:
    """The file's Arrow schema (CSV: as inferred from the first block); names unique."""
    if file_format(p) == "parquet":
        schema = _parquet_file(p).schema_arrow
        check_unique(p, schema.names)
        return schema
    check_unique(p, _csv_header(p))
    return _open_csv(p, None).schema


def row_count(path: str | os.PathLike[str]) -> int | None:
    """Number of rows if known without a scan (Parquet metadata); ``None`` for CSV."""
    p = _check_exists(path)
    if file_format(p) == "parquet":
        return int(_parquet_file(p).metadata.num_rows)
    return None
