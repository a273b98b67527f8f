"""The quantile sketch keeps its documented rank-error bound, its weights and its determinism."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from hypothesis.extra import numpy as hnp

from agent.checks.sketch import QuantileSketch, rank_error_bound
from trust.errors import CheckError

_FLOATS = hnp.arrays(
    np.float64,
    hs.integers(1, 3000),
    elements=hs.one_of(
        hs.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
        hs.sampled_from([0.0, 1.0, 2.0]),  # ties: many rows on one value
    ),
)


def _sketch(values: np.ndarray, capacity: int, chunk: int) -> QuantileSketch:
    sketch = QuantileSketch(capacity)
    for start in range(0, len(values), chunk):
        sketch.add(values[start : start + chunk])
    return sketch


def _rank_errors(values: np.ndarray, sketch: QuantileSketch) -> np.ndarray:
    """|estimated rank − true rank| at every value and just below it, in rows."""
    points, weights, _ = sketch.finish()
    queries = np.concatenate([values, np.nextafter(values, -np.inf)])
    true = np.searchsorted(np.sort(values), queries, side="right")
    cum = np.concatenate([[0], np.cumsum(weights)])
    estimated = cum[np.searchsorted(points, queries, side="right")]
    return np.abs(estimated - true)


@settings(max_examples=200, deadline=None)
@given(values=_FLOATS, capacity=hs.integers(2, 64), chunk=hs.integers(1, 4000))
def test_rank_error_within_documented_bound(values: np.ndarray, capacity: int, chunk: int) -> None:
    sketch = _sketch(values, capacity, chunk)
    points, weights, exact = sketch.finish()
    n = len(values)
    assert sketch.n == n and int(weights.sum()) == n
    assert len(points) <= capacity and np.all(np.diff(points) >= 0) and np.all(weights > 0)
    bound = 0.0 if exact else rank_error_bound(sketch.levels, capacity)
    assert _rank_errors(values, sketch).max() <= bound * n


@settings(max_examples=50, deadline=None)
@given(values=_FLOATS, capacity=hs.integers(2, 64))
def test_small_input_is_kept_exactly(values: np.ndarray, capacity: int) -> None:
    values = values[:capacity]
    points, weights, exact = _sketch(values, capacity, len(values)).finish()
    assert exact
    assert np.array_equal(points, np.sort(values)) and np.all(weights == 1)


def test_same_chunks_give_same_points() -> None:
    values = np.random.default_rng(3).normal(size=50_000)
    a = _sketch(values, 256, 1000).finish()
    b = _sketch(values, 256, 1000).finish()
    assert not a.exact
    assert np.array_equal(a.values, b.values) and np.array_equal(a.weights, b.weights)


def test_finish_does_not_consume_the_sketch() -> None:
    values = np.random.default_rng(4).normal(size=5000)
    sketch = _sketch(values, 64, 700)
    first = sketch.finish()
    again = sketch.finish()
    assert np.array_equal(first.values, again.values)
    sketch.add(np.zeros(10))
    assert int(sketch.finish().weights.sum()) == 5010


def test_capacity_below_two_is_refused() -> None:
    with pytest.raises(CheckError, match="at least 2"):
        QuantileSketch(1)
