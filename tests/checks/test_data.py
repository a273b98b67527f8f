"""agent.data: chunked CSV/Parquet reading and the named table of bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agent.data import (
    MISSING_GROUP,
    binary_labels,
    factorize,
    iter_chunks,
    read_columns,
    require_numeric,
    row_count,
    schema_of,
)
from trust.errors import DataError


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    table = pa.table(
        {
            "y": [1, 0, 1, 1, 0],
            "p": [1, 1, 0, 1, 0],
            "score": [0.9, 0.6, None, 0.8, 0.1],
            "sex": ["F", None, "M", "F", "M"],
            "n": [1, 2, None, 4, 5],
        }
    )
    out = {"csv": tmp_path / "v.csv", "parquet": tmp_path / "v.parquet"}
    import pyarrow.csv as pacsv

    pacsv.write_csv(table, out["csv"])
    pq.write_table(table, out["parquet"])
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("y,p\n")
    pq.write_table(table.slice(0, 0), tmp_path / "empty.parquet")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    (tmp_path / "labels.csv").write_text("y,p,txt\n0,1,a\n2,1,b\n1,0,c\n")
    (tmp_path / "data.txt").write_text("y\n1\n")
    out.update(
        {
            k: tmp_path / k
            for k in (
                "empty.csv",
                "header.csv",
                "empty.parquet",
                "bad.parquet",
                "labels.csv",
                "data.txt",
            )
        }
    )
    return out


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_chunks_have_bounded_rows_and_types(files: dict[str, Path], fmt: str) -> None:
    chunks = list(iter_chunks(files[fmt], ["y", "score", "sex", "n"], chunk_rows=2))
    assert [len(c["y"]) for c in chunks] == [2, 2, 1]
    whole = read_columns(files[fmt], ["y", "score", "sex", "n"])
    assert whole["y"].dtype == np.int64
    assert whole["score"].dtype == np.float64 and np.isnan(whole["score"][2])
    assert whole["sex"].dtype == object and whole["sex"][1] is None
    assert whole["n"].dtype == np.float64  # integers with a null widen to float with NaN
    assert schema_of(files[fmt]) == {
        "y": "num",
        "p": "num",
        "score": "num",
        "sex": "cat",
        "n": "num",
    }


def test_row_count(files: dict[str, Path]) -> None:
    assert row_count(files["parquet"]) == 5
    assert row_count(files["csv"]) is None


BAD_INPUTS = [
    ("missing file", "nope.csv", None, "no such file"),
    ("missing column csv", "csv", ["y", "age"], "no column 'age' (available: y, p, score, sex, n)"),
    (
        "missing column parquet",
        "parquet",
        ["agee"],
        "no column 'agee' (available: y, p, score, sex, n)",
    ),
    ("empty csv", "empty.csv", None, "file is empty"),
    ("header only csv", "header.csv", None, "file has no rows"),
    ("empty parquet", "empty.parquet", None, "file has no rows"),
    ("not parquet", "bad.parquet", None, "not a readable Parquet file"),
    ("unknown suffix", "data.txt", None, "unknown data format"),
]


@pytest.mark.parametrize(
    ("case", "name", "columns", "message"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS]
)
def test_bad_inputs_name_file_and_column(
    files, tmp_path: Path, case, name, columns, message
) -> None:
    path = files.get(name, tmp_path / name)
    with pytest.raises(DataError) as err:
        list(iter_chunks(path, columns))
    assert message in err.value.message
    assert str(path) in err.value.message


def test_non_binary_labels_name_the_value(files: dict[str, Path]) -> None:
    y = read_columns(files["labels.csv"], ["y"])["y"]
    with pytest.raises(
        DataError, match=r"labels.csv: column 'y' must be binary \(0/1\), found value 2"
    ):
        binary_labels(y, column="y", source=files["labels.csv"])
    with pytest.raises(DataError, match="found a missing value"):
        binary_labels(np.array([1.0, np.nan]), column="y")
    assert binary_labels(np.array(["yes", "no", "True"], dtype=object), column="y").tolist() == [
        1,
        0,
        1,
    ]
    assert binary_labels(
        np.array(["good", "bad"], dtype=object), column="y", pos_label="good"
    ).tolist() == [1, 0]


def test_wrong_dtype_names_value(files: dict[str, Path]) -> None:
    txt = read_columns(files["labels.csv"], ["txt"])["txt"]
    with pytest.raises(DataError, match="column 'txt' must be numeric, found value 'a'"):
        require_numeric(txt, column="txt")


def test_factorize_missing_and_numbers() -> None:
    codes, names = factorize(np.array(["b", None, "a", "b", float("nan")], dtype=object))
    assert [names[c] for c in codes] == ["b", MISSING_GROUP, "a", "b", MISSING_GROUP]
    codes, names = factorize(np.array([3, 1, 3]))
    assert [names[c] for c in codes] == ["3", "1", "3"]
    codes, names = factorize(np.array([1.0, 2.5, np.nan]))
    assert [names[c] for c in codes] == ["1", "2.5", MISSING_GROUP]
