"""Fairness equals fairlearn 0.15 on the same inputs (1e-12), and counts merge exactly.

fairlearn is the oracle: every disparity function (both methods, both aggregations, with and
without sample weights) on seeded random cases, on hypothesis-drawn cases, and on the edge
cases where fairlearn yields NaN (no positives, no selections) or one group only.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

fl = pytest.importorskip("fairlearn.metrics", reason="fairlearn is the oracle for these tests")

from agent.checks.fairness import (  # noqa: E402
    FairnessAccumulator,
    FairnessCounts,
    fairness_evidence,
    fairness_metrics,
    wilson_interval,
)

TOL = 1e-12
FUNCS = {
    "demographic_parity_difference": (fl.demographic_parity_difference, {}),
    "demographic_parity_ratio": (fl.demographic_parity_ratio, {}),
    "equalized_odds_difference": (fl.equalized_odds_difference, {}),
    "equalized_odds_ratio": (fl.equalized_odds_ratio, {}),
    "equalized_odds_difference_mean": (fl.equalized_odds_difference, {"agg": "mean"}),
    "equalized_odds_ratio_mean": (fl.equalized_odds_ratio, {"agg": "mean"}),
    "equal_opportunity_difference": (fl.equal_opportunity_difference, {}),
    "equal_opportunity_ratio": (fl.equal_opportunity_ratio, {}),
}


def _fl_features(sensitive: dict[str, np.ndarray]) -> pd.Series | pd.DataFrame:
    # fairlearn refuses missing values; Warden maps them to the group "missing".
    clean = {
        k: np.array(["missing" if v is None else v for v in vals], dtype=object)
        if vals.dtype == object
        else vals
        for k, vals in sensitive.items()
    }
    if len(clean) == 1:
        ((name, vals),) = clean.items()
        return pd.Series(vals, name=name)
    return pd.DataFrame(clean)


def assert_matches_fairlearn(y, p, sensitive, weight=None) -> None:
    counts = FairnessCounts.from_arrays(y, p, sensitive, sample_weight=weight)
    mine = fairness_metrics(counts)
    sf = _fl_features(sensitive)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method in ("between_groups", "to_overall"):
            for name, (func, kw) in FUNCS.items():
                ref = float(
                    func(y, p, sensitive_features=sf, method=method, sample_weight=weight, **kw)
                )
                got = mine[method][name]
                if math.isnan(ref):
                    assert math.isnan(got), (method, name, ref, got)
                else:
                    assert abs(got - ref) <= TOL, (method, name, ref, got)


def _case(seed: int):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    y = rng.integers(0, 2, n)
    p = (rng.random(n) < rng.random()).astype(np.int64)
    if seed % 6 == 0:
        p[:] = 0  # no selections at all: ratios are NaN in fairlearn
    if seed % 7 == 0:
        y[:] = 1  # no negatives: every FPR is 0 by scikit-learn's rule
    a = rng.choice(np.array(["a", "b", "c", None], dtype=object), n, p=[0.5, 0.3, 0.15, 0.05])
    b = rng.integers(0, 4, n)
    feats = [{"a": a}, {"b": b}, {"a": a, "b": b}][seed % 3]
    w = rng.random(n) + 0.1 if seed % 4 == 0 else None
    return y, p, feats, w


@pytest.mark.parametrize("seed", range(16))
def test_random_cases_equal_fairlearn(seed: int) -> None:
    y, p, feats, w = _case(seed)
    assert_matches_fairlearn(y, p, feats, w)


@settings(max_examples=15)
@given(
    data=st.lists(
        st.tuples(st.integers(0, 1), st.integers(0, 1), st.sampled_from("xyz"), st.integers(0, 2)),
        min_size=1,
        max_size=60,
    ),
    intersect=st.booleans(),
)
def test_hypothesis_cases_equal_fairlearn(data, intersect: bool) -> None:
    arr = np.array(data, dtype=object)
    y, p = arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64)
    feats = {"s": arr[:, 2].astype(object)}
    if intersect:
        feats["t"] = arr[:, 3].astype(np.int64)
    assert_matches_fairlearn(y, p, feats)


def test_group_rates_equal_metricframe() -> None:
    y, p, feats, _ = _case(5)
    counts = FairnessCounts.from_arrays(y, p, feats)
    ev = fairness_evidence(counts)
    mf = fl.MetricFrame(
        metrics={
            "selection_rate": fl.selection_rate,
            "tpr": fl.true_positive_rate,
            "fpr": fl.false_positive_rate,
            "fnr": fl.false_negative_rate,
            "tnr": fl.true_negative_rate,
            "count": fl.count,
        },
        y_true=y,
        y_pred=p,
        sensitive_features=_fl_features(feats),
    )
    by = mf.by_group
    for g, entry in ev["groups"].items():
        key = tuple(int(x) if x.isdigit() else x for x in g.split("|"))
        row = by.loc[key if len(key) > 1 else key[0]]
        assert entry["n"] == row["count"]
        for m in ("selection_rate", "tpr", "fpr", "fnr", "tnr"):
            assert abs(entry[m] - row[m]) <= TOL, (g, m)
    for m in ("selection_rate", "tpr", "fpr"):
        assert abs(ev["overall"][m] - mf.overall[m]) <= TOL


def test_merge_of_halves_equals_whole() -> None:
    y, p, feats, _ = _case(2)
    n = len(y)
    whole = FairnessCounts.from_arrays(y, p, feats)
    h = n // 3
    left = FairnessCounts.from_arrays(y[:h], p[:h], {k: v[:h] for k, v in feats.items()})
    right = FairnessCounts.from_arrays(y[h:], p[h:], {k: v[h:] for k, v in feats.items()})
    merged = left.merge(right)
    assert merged.groups == whole.groups
    assert np.array_equal(merged.counts, whole.counts)
    assert np.array_equal(merged.rows, whole.rows)
    assert fairness_evidence(merged) == fairness_evidence(whole)
    again = FairnessCounts.from_dict(merged.to_dict())
    assert fairness_evidence(again) == fairness_evidence(whole)


def test_accumulator_chunks_equal_one_pass() -> None:
    rng = np.random.default_rng(9)
    n = 5000
    y, p = rng.integers(0, 2, n), rng.integers(0, 2, n)
    sex = rng.choice(np.array(["F", "M", None], dtype=object), n)
    region = rng.choice(np.array(["n", "s", "e", "w"]), n).astype(object)
    acc = FairnessAccumulator([("sex",), ("region",), ("sex", "region")])
    for s in range(0, n, 777):
        acc.update(
            y[s : s + 777], p[s : s + 777], {"sex": sex[s : s + 777], "region": region[s : s + 777]}
        )
    for got, feats in zip(
        acc.result(),
        [{"sex": sex}, {"region": region}, {"sex": sex, "region": region}],
        strict=True,
    ):
        want = FairnessCounts.from_arrays(y, p, feats)
        assert got.groups == want.groups and np.array_equal(got.counts, want.counts)


def test_missing_sensitive_values_are_a_group_not_dropped() -> None:
    y = np.array([1, 0, 1, 1])
    p = np.array([1, 1, 0, 1])
    counts = FairnessCounts.from_arrays(
        y, p, {"sex": np.array(["F", None, np.nan, "M"], dtype=object)}
    )
    assert counts.groups == ("F", "M", "missing")
    assert int(counts.rows.sum()) == 4
    num = FairnessCounts.from_arrays(y, p, {"age": np.array([30.0, np.nan, 30.0, 41.0])})
    assert num.groups == ("30", "41", "missing")


def test_min_group_size_suppresses_and_excludes() -> None:
    y = np.array([1] * 50 + [0] * 50 + [1, 0])
    p = np.array([1] * 40 + [0] * 20 + [1] * 20 + [0] * 20 + [0, 0])  # A: 40/60, B: 20/40
    g = np.array(["A"] * 60 + ["B"] * 40 + ["tiny"] * 2, dtype=object)
    full = fairness_evidence(FairnessCounts.from_arrays(y, p, {"g": g}))
    small = fairness_evidence(FairnessCounts.from_arrays(y, p, {"g": g}), min_group_size=10)
    assert small["suppressed_groups"] == ["tiny"]
    assert small["groups"]["tiny"] == {"n": 2, "suppressed": True}  # size only, no rates
    # "tiny" selects nobody: with it the ratio is 0, without it the A/B ratio
    assert full["demographic_parity_ratio"] == 0.0
    sr_a, sr_b = 40 / 60, 20 / 40
    assert small["demographic_parity_ratio"] == pytest.approx(sr_b / sr_a, abs=1e-15)
    incl = fairness_evidence(
        FairnessCounts.from_arrays(y, p, {"g": g}), min_group_size=10, include_small_groups=True
    )
    assert incl["demographic_parity_ratio"] == 0.0 and incl["groups"]["tiny"]["suppressed"] is False


def test_four_fifths_rule() -> None:
    y = np.ones(200, dtype=np.int64)
    p = np.array([1] * 80 + [0] * 20 + [1] * 70 + [0] * 30)
    g = np.array(["A"] * 100 + ["B"] * 100, dtype=object)
    ev = fairness_evidence(FairnessCounts.from_arrays(y, p, {"g": g}))
    assert ev["four_fifths"]["passed"] is True and ev["four_fifths"]["reference_group"] == "A"
    p2 = np.array([1] * 80 + [0] * 20 + [1] * 60 + [0] * 40)
    ev2 = fairness_evidence(FairnessCounts.from_arrays(y, p2, {"g": g}))
    assert ev2["four_fifths"]["passed"] is False and ev2["four_fifths"]["failing_groups"] == ["B"]


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [
        # Reference values from Newcombe (1998), Table I (95%, Wilson score without cc).
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_interval_matches_published_values(k: int, n: int, lo: float, hi: float) -> None:
    got = wilson_interval(k, n)
    assert got is not None
    assert got[0] == pytest.approx(lo, abs=5e-5) and got[1] == pytest.approx(hi, abs=5e-5)
    assert wilson_interval(0, 0) is None


def test_evidence_has_no_nan_and_names_intersections() -> None:
    y = np.array([1, 1, 0, 0])
    p = np.zeros(4, dtype=np.int64)
    ev = fairness_evidence(
        FairnessCounts.from_arrays(
            y,
            p,
            {"sex": np.array(["F", "M", "F", "M"], dtype=object), "band": np.array([1, 1, 2, 2])},
        )
    )
    assert ev["demographic_parity_ratio"] is None  # 0/0 in fairlearn: NaN -> null
    assert set(ev["groups"]) == {"F|1", "F|2", "M|1", "M|2"}
    assert ev["features"] == ["sex", "band"]
