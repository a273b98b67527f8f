"""Drift parity with evidently 0.7.23's ``DataDriftPreset`` on a generated corpus.

Identical methods, thresholds and verdicts per column, statistics within 1e-6, identical
data-set verdicts. Corpus sizes are small because evidently is slow (~0.5 s per report).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

from agent.checks.drift import drift_evidence

pytest.importorskip("evidently", reason="evidently is the oracle for drift parity")


def _corpus(rng: np.random.Generator, n: int, shift: float) -> dict[str, np.ndarray]:
    """Numerical, categorical (strings), binary, low-cardinality and mixed columns."""
    cats = np.array(["alpha", "beta", "gamma", "delta", "eps"], dtype=object)
    p_cat = [0.4, 0.3, 0.15, 0.1, 0.05] if shift == 0 else [0.2, 0.2, 0.2, 0.2, 0.2]
    nums = rng.normal(shift, 1.0 + shift, n)
    return {
        "normal": nums,
        "skewed": rng.lognormal(shift / 2, 1.0, n),
        "with_nan": np.where(rng.random(n) < 0.1, np.nan, rng.exponential(1 + shift, n)),
        # evidently's DriftedColumnsCount drops ±inf only from columns that also hold a NaN
        # (its ValueDrift always does); with both present its two paths agree.
        "with_inf": np.where(
            rng.random(n) < 0.02,
            np.inf,
            np.where(rng.random(n) < 0.02, np.nan, rng.uniform(shift, 5, n)),
        ),
        "category": rng.choice(cats, n, p=p_cat),
        "binary_str": rng.choice(
            np.array(["yes", "no"], dtype=object), n, p=[0.5 + shift / 4, 0.5 - shift / 4]
        ),
        "flag": rng.random(n) < 0.3 + shift / 5,
        "int_lowcard": rng.integers(0, 4 if shift == 0 else 6, n),
        "float_3vals": rng.integers(0, 3, n).astype(float) + (1.0 if shift >= 1 else 0.0),
        "float_2vals": rng.integers(0, 2, n).astype(float),
        "int_wide": rng.integers(0, 40, n) + int(shift * 4),
        "constant_cat": np.full(n, "same", dtype=object),
    }


def _assert_same(ours: dict[str, Any], theirs: dict[str, Any], label: str) -> None:
    assert set(ours["columns"]) == set(theirs["columns"]), label
    for col, ev in theirs["columns"].items():
        w = ours["columns"][col]
        where = f"{label} column {col}: warden={w} evidently={ev}"
        assert w["method"] == ev["method"], where
        assert w["threshold"] == pytest.approx(ev["threshold"], abs=0), where
        assert w["drifted"] == ev["drifted"], where
        assert abs(w["statistic"] - ev["statistic"]) <= 1e-6 * max(1.0, abs(ev["statistic"])), where
    assert ours["number_drifted"] == theirs["number_drifted"], label
    assert ours["share_drifted"] == pytest.approx(theirs["share_drifted"], abs=1e-12), label
    assert ours["dataset_drift"] == theirs["dataset_drift"], label


CASES = [
    # (reference rows, current rows, shift): both sides of N = 1000 and large N.
    (200, 150, 0.0),
    (200, 150, 1.0),
    (1000, 700, 0.0),
    (1000, 700, 0.3),
    (1001, 600, 0.0),
    (1001, 600, 1.0),
    (6000, 4000, 0.0),
    (6000, 4000, 0.3),
    (6000, 4000, 1.0),
]


@pytest.mark.parametrize(("n_ref", "n_cur", "shift"), CASES)
def test_default_preset_parity(n_ref: int, n_cur: int, shift: float) -> None:
    from ._evidently_oracle import evidently_drift

    rng = np.random.default_rng(n_ref * 31 + int(shift * 10))
    reference = _corpus(rng, n_ref, 0.0)
    current = _corpus(rng, n_cur, shift)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = evidently_drift(reference, current)
    ours = drift_evidence(reference, current)
    _assert_same(ours, theirs, f"n_ref={n_ref} shift={shift}")


@pytest.mark.parametrize("drift_share", [0.1, 0.5, 0.9])
def test_dataset_verdict_follows_drift_share(drift_share: float) -> None:
    from ._evidently_oracle import evidently_drift

    rng = np.random.default_rng(7)
    reference = _corpus(rng, 1500, 0.0)
    current = _corpus(rng, 1200, 0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = evidently_drift(reference, current, drift_share=drift_share)
    ours = drift_evidence(reference, current, drift_share=drift_share)
    _assert_same(ours, theirs, f"drift_share={drift_share}")


EXPLICIT = [
    # (numerical method, categorical method)
    ("psi", "psi"),
    ("jensenshannon", "jensenshannon"),
    ("ks", "chisquare"),
    ("wasserstein", "z"),
]


@pytest.mark.parametrize(("num_method", "cat_method"), EXPLICIT)
@pytest.mark.parametrize("n_ref", [400, 3000])
def test_explicit_methods_match_evidently_stattests(
    num_method: str, cat_method: str, n_ref: int
) -> None:
    from ._evidently_oracle import evidently_drift

    rng = np.random.default_rng(n_ref + len(num_method))
    reference = _corpus(rng, n_ref, 0.0)
    current = _corpus(rng, n_ref // 2 + 7, 0.5)
    for d in (reference, current):
        del d["constant_cat"]  # chisquare on one category is NaN in both: not informative
    numeric = {"normal", "skewed", "with_nan", "with_inf", "float_3vals", "float_2vals", "int_wide"}
    methods = {c: (num_method if c in numeric else cat_method) for c in reference}
    thresholds = {"normal": 0.2, "category": 0.01, "int_wide": 0.07}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = evidently_drift(
            reference, current, per_column_method=methods, per_column_threshold=thresholds
        )
    ours = drift_evidence(reference, current, methods=methods, thresholds=thresholds)
    _assert_same(ours, theirs, f"{num_method}/{cat_method} n_ref={n_ref}")
