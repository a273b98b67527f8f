"""Column-at-a-time reading (drift's memory bound) gives exactly the whole-file results.

``agent.data.read_column`` / ``ColumnReader`` feed drift one column at a time; the exact-AUC
accumulator keeps scores split by class. These tests pin that the memory-saving paths return
the same arrays and the same evidence, bit for bit, as the straightforward ones.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import sklearn.metrics as skm
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.checks.drift import drift_evidence
from agent.checks.performance import ClassificationAccumulator, roc_auc_exact
from agent.checks.profile import ReferenceProfile
from agent.data import ColumnReader, iter_chunks, read_column, read_columns
from trust.errors import DataError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from gen_credit import generate  # noqa: E402

DRIFT_COLUMNS = ["income", "debt_ratio", "age", "open_accounts", "sex", "employment"]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cols")
    cur = generate(4000, seed=11, bias=0.1)
    ref = generate(2500, seed=12, shift=0.3)
    out = {}
    for name, table in (("cur", cur), ("ref", ref)):
        out[f"{name}.parquet"] = d / f"{name}.parquet"
        pq.write_table(table, out[f"{name}.parquet"], row_group_size=900)
        out[f"{name}.csv"] = d / f"{name}.csv"
        pacsv.write_csv(table, out[f"{name}.csv"])
    # Types that change between row groups: integers whose nulls appear only later (int64
    # first, float64 with NaN after), booleans with a null, strings with nulls.
    mixed = pa.table(
        {
            "late_null_int": pa.array([1, 2, 3, 4, None, 6], pa.int64()),
            "bool_null": pa.array([True, False, True, None, False, True]),
            "text": pa.array(["a", None, "b", "c", "a", None]),
            "x": pa.array([0.5, np.nan, 1.5, 2.5, -1.0, 3.0]),
        }
    )
    out["mixed.parquet"] = d / "mixed.parquet"
    pq.write_table(mixed, out["mixed.parquet"], row_group_size=2)
    return out


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return (
        a.dtype == b.dtype
        and len(a) == len(b)
        and all(
            (x is y) or (x == y) or (x != x and y != y)
            for x, y in zip(a.tolist(), b.tolist(), strict=True)
        )
    )


@pytest.mark.parametrize("name", ["cur.parquet", "cur.csv", "mixed.parquet"])
def test_read_column_equals_read_columns(files: dict[str, Path], name: str) -> None:
    whole = read_columns(files[name])
    for column, expected in whole.items():
        assert _same(read_column(files[name], column), expected), column
    assert read_column(files["mixed.parquet"], "late_null_int").dtype == np.float64


def test_column_reader_checks_columns_up_front_and_reads_lazily(files: dict[str, Path]) -> None:
    with pytest.raises(DataError, match=r"cur\.parquet: no column 'nope'"):
        ColumnReader(files["cur.parquet"], ["income", "nope"])
    reader = ColumnReader(files["cur.parquet"], ["income", "age"])
    assert list(reader) == ["income", "age"] and len(reader) == 2
    assert "income" in reader and "sex" not in reader
    with pytest.raises(KeyError):
        reader["sex"]  # present in the file, but not one of the reader's columns
    assert reader["income"] is not reader["income"]  # read on each lookup, never cached


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_drift_one_column_at_a_time_equals_whole_files(files: dict[str, Path], fmt: str) -> None:
    ref, cur = files[f"ref.{fmt}"], files[f"cur.{fmt}"]
    lazy = drift_evidence(ColumnReader(ref, DRIFT_COLUMNS), ColumnReader(cur, DRIFT_COLUMNS))
    whole = drift_evidence(read_columns(ref, DRIFT_COLUMNS), read_columns(cur, DRIFT_COLUMNS))
    assert lazy == whole  # bit for bit, statistics included
    assert lazy["number_drifted"] >= 1  # the reference is shifted: something to compare


def test_profile_compare_on_columns_equals_chunks(files: dict[str, Path]) -> None:
    prof = ReferenceProfile.build(iter_chunks(files["ref.parquet"], DRIFT_COLUMNS))
    by_column = prof.compare(ColumnReader(files["cur.parquet"], DRIFT_COLUMNS))
    by_chunks = prof.compare(iter_chunks(files["cur.parquet"], DRIFT_COLUMNS, chunk_rows=700))
    assert by_column == by_chunks
    with pytest.raises(DataError, match="'income' is in the reference profile but not"):
        prof.compare({"sex": np.array(["F"])})


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.integers(0, 1), min_size=2, max_size=300),
    decimals=st.integers(0, 3),
    seed=st.integers(0, 2**32 - 1),
    chunk=st.integers(1, 64),
)
def test_exact_auc_with_ties_equals_sklearn(
    labels: list[int], decimals: int, seed: int, chunk: int
) -> None:
    y = np.array(labels)
    s = np.round(np.random.default_rng(seed).random(len(y)), decimals)  # many ties
    if y.min() == y.max():
        assert roc_auc_exact(y, s) is None
        return
    want = skm.roc_auc_score(y, s)
    assert roc_auc_exact(y, s) == pytest.approx(want, abs=1e-12)
    halves = [ClassificationAccumulator(), ClassificationAccumulator()]
    for i, start in enumerate(range(0, len(y), chunk)):
        part = slice(start, start + chunk)
        halves[i % 2].update(y[part], (s[part] > 0.5).astype(int), s[part])
    merged = halves[0].merge(halves[1]) if halves[1]._n else halves[0]
    assert merged.evidence()["roc_auc"] == roc_auc_exact(y, s)  # order-free, exact integers
