"""Unit tests of the drift statistics and rules (no evidently: scipy and numpy are the oracle)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as hs
from scipy import stats

from agent.checks import _stattests as st
from agent.checks.drift import drift_evidence, infer_column_type
from trust.errors import CheckError, DataError


@pytest.mark.parametrize(
    ("n1", "n2", "ties"),
    [
        (50, 70, False),
        (400, 333, True),
        (5000, 9000, False),
        (12000, 800, False),
        (20000, 15000, True),
    ],
)
def test_ks_statistic_and_pvalue_match_ks_2samp(n1: int, n2: int, ties: bool) -> None:
    rng = np.random.default_rng(n1 + n2)
    a, b = rng.normal(0, 1, n1), rng.normal(0.05, 1.1, n2)
    if ties:
        a, b = np.round(a, 1), np.round(b, 1)
    want = stats.ks_2samp(a, b)
    d = st.ks_statistic(np.sort(a), None, np.sort(b))
    assert d == pytest.approx(want.statistic, abs=1e-12)
    assert st.ks_pvalue(d, n1, n2) == pytest.approx(want.pvalue, rel=1e-9, abs=1e-15)
    # The same sample given as value counts (weights) gives the same statistic.
    keys, counts = np.unique(a, return_counts=True)
    assert st.ks_statistic(keys, counts.astype(float), np.sort(b)) == pytest.approx(d, abs=1e-12)


@pytest.mark.parametrize("integers", [False, True])
def test_wasserstein_matches_scipy_weighted_and_not(integers: bool) -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(0, 30, 2000).astype(float) if integers else rng.gamma(2, 1, 2000)
    b = rng.integers(2, 35, 1500).astype(float) if integers else rng.gamma(2.2, 1, 1500)
    want = stats.wasserstein_distance(a, b) / max(float(np.std(a)), 0.001)
    got = st.wasserstein_norm(np.sort(a), None, np.sort(b), float(np.std(a)))
    assert got == pytest.approx(want, rel=1e-12)
    keys, counts = np.unique(a, return_counts=True)
    got_w = st.wasserstein_norm(keys, counts.astype(float), np.sort(b), float(np.std(a)))
    assert got_w == pytest.approx(want, rel=1e-12)


@given(
    hs.lists(hs.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=300),
    hs.booleans(),
)
def test_sturges_edges_and_histogram_equal_numpy(values: list[float], integer: bool) -> None:
    arr = np.array(values)
    if integer:
        arr = np.round(arr).astype(np.int64)
    want = np.histogram_bin_edges(arr, bins="sturges")
    got = st.sturges_edges(float(arr.min()), float(arr.max()), len(arr), integer=integer)
    np.testing.assert_array_equal(got, want)
    counts = st.histogram_sorted(np.sort(arr.astype(float)), got)
    np.testing.assert_array_equal(counts, np.histogram(arr, got)[0])


def test_fill_zeroes_follows_evidently_rule() -> None:
    np.testing.assert_array_equal(st.fill_zeroes(np.array([0.0, 0.5, 0.5])), [1e-4, 0.5, 0.5])
    small = st.fill_zeroes(np.array([0.0, 0.00005, 0.99995]))
    assert small[0] == pytest.approx(0.00005 / 1e6)


def test_threshold_directions() -> None:
    assert st.METHODS["ks"].drifted(0.05, 0.05) is True  # p <= threshold
    assert st.METHODS["chisquare"].drifted(0.05, 0.05) is False  # p < threshold
    assert st.METHODS["z"].drifted(0.0499, 0.05) is True
    assert st.METHODS["wasserstein"].drifted(0.1, 0.1) is True  # distance >= threshold
    assert st.METHODS["psi"].drifted(float("nan"), 0.1) is False


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (np.array([0.5, 1.5]), "num"),
        (np.arange(10), "cat"),
        (np.arange(11), "num"),
        (np.array([1, 2, 3], dtype=np.uint8), "cat"),
        (np.array([True, False]), "cat"),
        (np.array(["a", "b"], dtype=object), "cat"),
        (np.array(["a", "b"]), "cat"),
    ],
)
def test_infer_column_type(values: np.ndarray, expected: str) -> None:
    assert infer_column_type(values) == expected


def test_datetime_column_is_refused() -> None:
    with pytest.raises(DataError, match="'t'"):
        infer_column_type(np.array(["2024-01-01"], dtype="datetime64[D]"), name="t")


def _pair() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    levels = np.array(["a", "b", "c"], dtype=object)
    ref = {"x": rng.normal(size=300), "c": rng.choice(levels, 300)}
    cur = {"x": rng.normal(size=200) + 2, "c": rng.choice(levels, 200)}
    return ref, cur


BAD_CALLS = [
    ("missing current column", {"drop": "x"}, DataError, "not in the current"),
    ("unknown method", {"methods": {"x": "magic"}}, CheckError, "unknown drift method"),
    ("ks on categorical", {"methods": {"c": "ks"}}, CheckError, "categorical"),
    ("chisquare on numerical", {"methods": {"x": "chisquare"}}, CheckError, "numerical"),
    ("bad column type", {"column_types": {"x": "text"}}, CheckError, "'num' or 'cat'"),
    ("strings declared numerical", {"column_types": {"c": "num"}}, DataError, "needs numbers"),
    ("all-NaN reference", {"nan_ref": "x"}, DataError, "no usable values"),
]


@pytest.mark.parametrize(
    ("label", "change", "error", "match"), BAD_CALLS, ids=[b[0] for b in BAD_CALLS]
)
def test_bad_inputs_raise_clear_errors(label: str, change: dict, error: type, match: str) -> None:
    ref, cur = _pair()
    if "drop" in change:
        del cur[change["drop"]]
    if "nan_ref" in change:
        ref[change["nan_ref"]] = np.full(300, np.nan)
    kwargs = {k: v for k, v in change.items() if k in ("methods", "column_types")}
    with pytest.raises(error, match=match):
        drift_evidence(ref, cur, **kwargs)


def test_dataset_verdict_is_share_at_or_above_drift_share() -> None:
    ref, cur = _pair()
    result = drift_evidence(ref, cur)
    assert result["columns"]["x"]["drifted"] is True
    assert result["columns"]["c"]["drifted"] is False
    assert result["share_drifted"] == 0.5
    assert result["dataset_drift"] is True  # 0.5 >= 0.5
    assert drift_evidence(ref, cur, drift_share=0.51)["dataset_drift"] is False
    keys = {"method", "statistic", "threshold", "drifted", "column_type"}
    assert set(result["columns"]["x"]) == keys


def test_nan_and_inf_are_dropped_before_counting() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(size=900)
    ref = {"x": np.concatenate([base, [np.nan] * 150, [np.inf, -np.inf]])}
    cur = {"x": rng.normal(size=400)}
    # 900 usable values: still the small-reference rule (ks), not the large one.
    assert drift_evidence(ref, cur)["columns"]["x"]["method"] == "ks"
    assert drift_evidence(ref, cur)["columns"]["x"]["statistic"] == pytest.approx(
        stats.ks_2samp(base, cur["x"]).pvalue
    )
