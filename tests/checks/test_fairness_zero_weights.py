"""Fairness with all-zero-weight groups (NaN in fairlearn, so null here and out of every
aggregate), their suppression, and the stated limits of suppression (it is not privacy).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

from agent.checks.evidence import evidence_schema
from agent.checks.fairness import (
    RATE_NAMES,
    FairnessCounts,
    fairness_evidence,
    fairness_metrics,
)

DP_METRICS = ("demographic_parity_difference", "demographic_parity_ratio")
TPR_FPR_METRICS = (
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
)


def _zero_weight_case(seed: int) -> tuple[Any, Any, Any, Any]:
    rng = np.random.default_rng(seed)
    n = 400
    y = rng.integers(0, 2, n)
    p = rng.integers(0, 2, n)
    s = rng.choice(["a", "b", "c", "z"], n, p=[0.4, 0.3, 0.2, 0.1])
    w = rng.uniform(0.2, 3.0, n)
    w[s == "z"] = 0.0
    # make the zero-weight group extreme, so counting it as rate 0.0 (or 1.0) would show
    p[s == "z"] = 0
    return y, p, s, w


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_zero_weight_group_matches_fairlearn(seed: int) -> None:
    fl = pytest.importorskip("fairlearn.metrics")
    y, p, s, w = _zero_weight_case(seed)
    counts = FairnessCounts.from_arrays(y, p, {"s": s}, sample_weight=w)
    ours = fairness_metrics(counts)
    sf = pd.Series(s, name="s")
    live = s != "z"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mf = fl.MetricFrame(
            metrics=fl.selection_rate,
            y_true=y,
            y_pred=p,
            sensitive_features=sf,
            sample_params={"sample_weight": w},
        )
        assert math.isnan(mf.by_group["z"])  # the peer's behaviour this test relies on
        for method in ("between_groups", "to_overall"):
            for name in DP_METRICS:
                theirs = getattr(fl, name)(
                    y, p, sensitive_features=sf, sample_weight=w, method=method
                )
                assert ours[method][name] == pytest.approx(theirs, abs=1e-12), (method, name)
            # fairlearn's TPR/FPR metrics refuse an all-zero-weight group (scikit-learn's
            # confusion_matrix raises); skipping the group equals fairlearn without its rows.
            for name in TPR_FPR_METRICS:
                theirs = getattr(fl, name)(
                    y[live],
                    p[live],
                    sensitive_features=sf[live],
                    sample_weight=w[live],
                    method=method,
                )
                assert ours[method][name] == pytest.approx(theirs, abs=1e-12), (method, name)
    ev = fairness_evidence(counts)
    z = ev["groups"]["z"]
    assert z["n"] == int((s == "z").sum()) and z["suppressed"] is False
    assert all(z[r] is None for r in RATE_NAMES)
    for g in ("a", "b", "c"):
        assert ev["groups"][g]["selection_rate"] == pytest.approx(mf.by_group[g], abs=1e-12)
    assert "z" not in ev["four_fifths"]["failing_groups"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dp_ratio = fl.demographic_parity_ratio(y, p, sensitive_features=sf, sample_weight=w)
    assert ev["four_fifths"]["ratio"] == pytest.approx(dp_ratio, abs=1e-12)
    validate_fairness_against_schema(ev)


def test_zero_weight_group_below_min_size_is_suppressed() -> None:
    y, p, s, w = _zero_weight_case(3)
    ev = fairness_evidence(
        FairnessCounts.from_arrays(y, p, {"s": s}, sample_weight=w), min_group_size=10_000
    )
    assert ev["groups"]["z"] == {"n": int((s == "z").sum()), "suppressed": True}
    assert ev["suppressed_groups"] == ["a", "b", "c", "z"]


def validate_fairness_against_schema(ev: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = evidence_schema()
    sub = {"$defs": schema["$defs"], **schema["$defs"]["fairness_feature"]}
    jsonschema.Draft202012Validator(sub).validate(ev)


# --- privacy wording: the limits of suppression are stated where users read them ---


def test_suppression_is_not_presented_as_privacy() -> None:
    import agent.checks.fairness as fairness

    doc = " ".join((fairness.__doc__ or "").split())
    assert "not** a privacy guarantee" in doc and "subtracting" in doc
    schema = evidence_schema()
    for text in (
        schema["properties"]["fairness"]["description"],
        schema["$defs"]["fairness_feature"]["properties"]["min_group_size"]["description"],
        schema["$defs"]["group"]["description"],
    ):
        low = text.lower()
        assert "not a privacy guarantee" in low or "not privacy" in low, text
        assert "subtraction" in low, text
    assert "operator" in schema["properties"]["fairness"]["description"]
