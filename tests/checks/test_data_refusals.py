"""agent.data corrections from issue 8: items 17 (bytes, nested columns), 18 (duplicate
columns) and 21 (the label hint that fits the case).

Each test is named by the mistake it covers and failed before the fix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import agent.data as datamod
from agent.data import ColumnReader, binary_labels, iter_chunks, read_column, schema_of
from trust.errors import DataError

# -- item 17: bytes that are not UTF-8 ---------------------------------------------------


def test_latin1_value_in_csv_names_file_column_and_row(tmp_path: Path) -> None:
    csv = tmp_path / "latin1.csv"
    csv.write_bytes(b"y,sex\n1,F\n0,M\n1,Fran\xe7oise\n")
    with pytest.raises(DataError) as err:
        list(iter_chunks(csv, ["y", "sex"]))
    msg = err.value.message
    assert msg.startswith(f"{csv}: column 'sex', data row 3: ")
    assert "not valid UTF-8" in msg and r"b'Fran\xe7oise'" in msg
    assert err.value.hint is not None and "UTF-8" in err.value.hint


def test_latin1_value_in_a_later_csv_block_names_its_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrow types a column from the first block: here "sex" is text there, and the bad
    # bytes arrive in a later block, which Arrow reports without a row.
    monkeypatch.setattr(datamod, "_CSV_BLOCK_BYTES", 64)
    csv = tmp_path / "late.csv"
    csv.write_bytes(b"y,sex\n" + b"1,F\n" * 40 + b"0,\xffM\n" + b"1,M\n" * 5)
    with pytest.raises(DataError) as err:
        list(iter_chunks(csv, ["y", "sex"], chunk_rows=7))
    assert err.value.message.startswith(f"{csv}: column 'sex', data row 41: ")
    assert r"b'\xffM'" in err.value.message


def test_latin1_bytes_in_an_unused_csv_column_do_not_matter(tmp_path: Path) -> None:
    csv = tmp_path / "other.csv"
    csv.write_bytes(b"y,note\n1,caf\xe9\n0,ok\n")
    assert read_column(csv, "y").tolist() == [1, 0]


def test_latin1_csv_header_is_refused_with_its_offset(tmp_path: Path) -> None:
    csv = tmp_path / "header.csv"
    csv.write_bytes(b"y,ge\xf1der\n1,F\n")
    for read in (lambda: schema_of(csv), lambda: list(iter_chunks(csv, ["y"]))):
        with pytest.raises(DataError, match=r"header\.csv: the header line is not valid UTF-8"):
            read()
    with pytest.raises(DataError, match=r"byte 0xf1 at offset 4"):
        schema_of(csv)


def test_non_utf8_parquet_binary_column_names_its_row(tmp_path: Path) -> None:
    path = tmp_path / "bin.parquet"
    pq.write_table(
        pa.table({"y": [1, 0, 1], "sex": pa.array([b"F", b"M", b"\xc3("], pa.binary())}),
        path,
        row_group_size=2,
    )
    for read in (lambda: read_column(path, "sex"), lambda: list(iter_chunks(path, ["sex"]))):
        with pytest.raises(DataError, match=r"bin\.parquet: column 'sex', data row 3: "):
            read()


# -- item 17: list/struct columns ---------------------------------------------------------

NESTED = {
    "tags": pa.array([[1, 2], [3], [], None]),
    "point": pa.array([{"x": 1}, {"x": 2}, {"x": 1}, None]),
    "attrs": pa.array([[("k", 1)], [], None, [("j", 2)]], pa.map_(pa.string(), pa.int64())),
}


@pytest.fixture()
def nested(tmp_path: Path) -> Path:
    path = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"y": [1, 0, 1, 0], **NESTED}), path)
    return path


@pytest.mark.parametrize("column", sorted(NESTED))
def test_nested_parquet_column_is_refused_with_its_type(nested: Path, column: str) -> None:
    stored = pq.read_schema(nested)  # Parquet renames list items ("item" -> "element")
    readers = (
        lambda: list(iter_chunks(nested, ["y", column])),
        lambda: read_column(nested, column),
        lambda: ColumnReader(nested, [column]),
        lambda: ColumnReader(nested),  # drift's default: every column
    )
    for i, read in enumerate(readers):
        with pytest.raises(DataError) as err:
            read()
        msg = err.value.message
        # Every column at once: the first nested one in file order is named.
        named = "tags" if i == len(readers) - 1 else column
        shown = str(stored.field(named).type)
        assert msg.startswith(f"{nested}: column '{named}' has type {shown}"), msg
        assert "must be scalar" in msg


def test_nested_column_named_exactly(nested: Path) -> None:
    with pytest.raises(DataError) as err:
        list(iter_chunks(nested, ["tags"]))
    assert err.value.message.startswith(f"{nested}: column 'tags' has type list<element: int64>")


def test_nested_column_not_asked_for_is_no_obstacle(nested: Path) -> None:
    assert [c["y"].tolist() for c in iter_chunks(nested, ["y"])] == [[1, 0, 1, 0]]
    assert read_column(nested, "y").tolist() == [1, 0, 1, 0]


# -- item 18: duplicate column names ------------------------------------------------------


def test_duplicate_csv_column_is_refused_naming_it(tmp_path: Path) -> None:
    csv = tmp_path / "dup.csv"
    csv.write_text("y,p,y\n1,1,0\n0,1,1\n")
    readers = (
        lambda: list(iter_chunks(csv, ["y"])),
        lambda: list(iter_chunks(csv, ["p"])),  # the file is ambiguous whatever is read
        lambda: read_column(csv, "p"),
        lambda: schema_of(csv),
        lambda: ColumnReader(csv),
    )
    for read in readers:
        with pytest.raises(DataError, match=r"dup\.csv: column 'y' appears 2 times"):
            read()


def test_duplicate_parquet_column_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "dup.parquet"
    pq.write_table(pa.table([pa.array([1, 0]), pa.array([0, 1])], names=["y", "y"]), path)
    for read in (
        lambda: list(iter_chunks(path)),
        lambda: read_column(path, "y"),
        lambda: schema_of(path),
    ):
        with pytest.raises(DataError, match=r"dup\.parquet: column 'y' appears 2 times"):
            read()


# -- item 21: the hint fits the case ------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        np.array([0, 1, 2, 1]),
        np.array([0.0, 1.0, 2.0]),
        np.array(["a", "b", "c", "a"], dtype=object),
        np.array(["yes", "no", "maybe"], dtype=object),
    ],
    ids=["ints", "floats", "text", "yes-no-maybe"],
)
def test_three_valued_label_hints_multiclass_not_pos_label(values: np.ndarray) -> None:
    with pytest.raises(DataError) as err:
        binary_labels(values, column="y", source="v.csv", seen=set())
    assert err.value.hint is not None
    assert "--task multiclass" in err.value.hint and "--pos-label" not in err.value.hint


@pytest.mark.parametrize(
    "values",
    [np.array([1, 2, 1]), np.array(["good", "bad"], dtype=object)],
    ids=["1-2", "good-bad"],
)
def test_two_valued_label_that_is_not_0_1_hints_pos_label(values: np.ndarray) -> None:
    with pytest.raises(DataError) as err:
        binary_labels(values, column="y", source="v.csv", seen=set())
    assert err.value.hint is not None and "--pos-label" in err.value.hint
    assert "multiclass" not in err.value.hint


def test_third_value_in_a_later_chunk_hints_multiclass() -> None:
    seen: set[str] = set()
    binary_labels(np.array([0, 1, 1]), column="y", seen=seen)
    with pytest.raises(DataError) as err:
        binary_labels(np.array([2, 2]), column="y", seen=seen)
    assert err.value.hint is not None and "--task multiclass" in err.value.hint


def test_missing_label_does_not_hint_pos_label() -> None:
    with pytest.raises(DataError, match="found a missing value") as err:
        binary_labels(np.array([1.0, np.nan]), column="y")
    assert err.value.hint is None or "--pos-label" not in err.value.hint
