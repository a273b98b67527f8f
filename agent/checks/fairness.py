"""Group fairness from per-group confusion counts, equal to fairlearn on the same inputs.

One pass over the rows builds :class:`FairnessCounts`: for every group (one value of a
sensitive feature, or one combination of values for several features, as fairlearn's
``MetricFrame`` does with several columns) the confusion counts ``tn, fp, fn, tp`` and the
row count ``n``. The pass is a single ``np.bincount`` over ``group_code * 4 + 2 * y + ŷ``.
Every metric is then derived from the counts, which keeps these invariants:

* counts are additive: ``a.merge(b)`` over two disjoint slices of rows equals the counts of
  the whole, so chunks of a file and evidence from several nodes combine exactly;
* every per-group rate and every disparity equals fairlearn 0.15's value on the same rows
  (same empty-denominator rule: a rate over no rows is ``0.0``, as scikit-learn's
  ``confusion_matrix(normalize="true")`` makes it; same ``between_groups``/``to_overall``
  definitions; same ``worst_case``/``mean`` aggregation, including how a NaN ratio
  propagates through ``min``/``max``);
* a null or NaN sensitive value is the group ``"missing"``, never dropped;
* a feature (or intersection) with fewer than two *usable* groups yields no number at all:
  its evidence entry says ``unmeasurable`` with the reason, and every metric is ``null`` (so
  a policy's fail-closed rule for missing metrics denies). A group is usable when it has at
  least ``min_group_size`` rows (or small groups are included), a non-zero total weight, and
  no missing value: ``"missing"`` holds the rows whose sensitive value is unknown, so
  comparing it with one real group measures nothing about that feature. With two or more
  usable groups, ``"missing"`` stays in the aggregates as fairlearn would count it;
* groups smaller than ``min_group_size`` rows are reported by size only and left out of
  every aggregate unless ``include_small_groups`` is set; the ``overall`` rates always use
  every row;
* with sample weights, a group whose weights are all zero has no defined rate: its rates
  are ``None`` and it is left out of every aggregate, as fairlearn's ``selection_rate`` gives
  NaN and its ``difference``/``ratio`` skip NaN (fairlearn's TPR/FPR-based metrics refuse
  such a group outright; Warden computes them over the remaining groups);
* the evidence holds counts and rates only, never a row; NaN becomes ``None`` (JSON null).

Privacy: ``min_group_size`` suppression exists for *statistical reliability* (a rate over a
handful of rows is noise) and keeps tiny groups' counts and rates out of the evidence and
out of the aggregates. It is **not** a privacy guarantee: a suppressed group's size is always
reported, and when one group is suppressed its confusion counts can be recovered by
subtracting the kept groups' counts from the overall figures (``n`` and the ``overall``
rates determine the overall counts); with several suppressed groups, their sum can. The
evidence is aggregates chosen by the node's operator, who decides which
sensitive features to report; treat it as data about the people in it, not as anonymised.

Intersectional group names join the values with ``|`` in feature order (``"F|north"``) and
the feature key joins the feature names the same way (``"sex|region"``).

Layout: the counts are :mod:`agent.checks.fairness_counts`, the metrics derived from them
:mod:`agent.checks.disparity`; this module assembles the evidence entry and re-exports the
public names of both, so ``from agent.checks.fairness import FairnessCounts`` keeps working.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from agent.checks.disparity import (
    METRIC_KEYS,
    RATE_NAMES,
    Z95,
    defined_groups,
    fairness_metrics,
    group_rates,
    large_groups,
    rate_fractions,
    unmeasurable_reason,
    usable_groups,
    wilson_interval,
)
from agent.checks.disparity import Agg as Agg
from agent.checks.disparity import Method as Method
from agent.checks.fairness_counts import (
    GROUP_SEPARATOR,
    FairnessAccumulator,
    FairnessCounts,
    count_value,
)

__all__ = [
    "FairnessCounts",
    "FairnessAccumulator",
    "RATE_NAMES",
    "GROUP_SEPARATOR",
    "fairness_evidence",
    "fairness_metrics",
    "unmeasurable_reason",
    "wilson_interval",
]


def _json_num(x: float) -> float | None:
    return None if (x is None or math.isnan(x) or math.isinf(x)) else float(x)


def fairness_evidence(
    counts: FairnessCounts,
    *,
    min_group_size: int = 0,
    include_small_groups: bool = False,
    four_fifths_threshold: float = 0.8,
    confidence_z: float = Z95,
) -> dict[str, Any]:
    """The evidence entry ``fairness.<feature>`` for one feature set (see the schema).

    When :func:`unmeasurable_reason` gives a reason, every disparity and the four-fifths
    verdict are ``null`` and ``unmeasurable`` holds the reason; otherwise it is ``null``.
    """
    reason = unmeasurable_reason(
        counts, min_group_size=min_group_size, include_small_groups=include_small_groups
    )
    large = large_groups(counts, min_group_size, include_small_groups)
    defined = defined_groups(counts)
    keep = large & defined
    rates = group_rates(counts.counts)
    dens = rate_fractions(counts.counts)
    overall_counts = counts.total.reshape(1, 4)
    overall = group_rates(overall_counts)
    groups: dict[str, Any] = {}
    for i, g in enumerate(counts.groups):
        small = not bool(large[i])
        entry: dict[str, Any] = {"n": int(counts.rows[i]), "suppressed": small}
        if not small:
            tn, fp, fn, tp = (count_value(v) for v in counts.counts[i])
            entry.update({"tp": tp, "fp": fp, "tn": tn, "fn": fn})
            for name in RATE_NAMES:
                entry[name] = float(rates[name][i]) if defined[i] else None
            if not counts.weighted:
                entry["ci"] = {
                    name: _ci(dens[name][0][i], dens[name][1][i], confidence_z)
                    for name in RATE_NAMES
                }
        groups[g] = entry
    metrics = fairness_metrics(
        counts, min_group_size=min_group_size, include_small_groups=include_small_groups
    )
    kept_names = [g for g, k in zip(counts.groups, keep, strict=True) if k]
    sr = rates["selection_rate"][keep]
    ref = kept_names[int(np.argmax(sr))] if len(sr) else None
    best = float(sr.max()) if len(sr) else math.nan
    failing = (
        [
            g
            for g, r in zip(kept_names, sr, strict=True)
            if best > 0 and r / best < four_fifths_threshold
        ]
        if len(sr)
        else []
    )
    dp_ratio = metrics["between_groups"]["demographic_parity_ratio"]
    evidence: dict[str, Any] = {
        "features": list(counts.features),
        "n": int(counts.rows.sum()),
        "number_of_groups": len(counts.groups),
        "min_group_size": int(min_group_size),
        "suppressed_groups": [g for g, k in zip(counts.groups, large, strict=True) if not k],
        "weighted": counts.weighted,
        "overall": {name: float(overall[name][0]) for name in RATE_NAMES},
    }
    evidence.update({k: _json_num(v) for k, v in metrics["between_groups"].items()})
    evidence["to_overall"] = {k: _json_num(v) for k, v in metrics["to_overall"].items()}
    evidence["four_fifths"] = {
        "threshold": four_fifths_threshold,
        "ratio": _json_num(dp_ratio),
        "passed": bool(not math.isnan(dp_ratio) and dp_ratio >= four_fifths_threshold)
        if len(sr)
        else None,
        "reference_group": ref,
        "failing_groups": failing,
    }
    evidence["groups"] = groups
    evidence["unmeasurable"] = None
    if reason is not None:
        _blank_disparities(evidence)
        usable = usable_groups(counts, min_group_size, include_small_groups)
        evidence["unmeasurable"] = {
            "reason": reason,
            "usable_groups": [g for g, u in zip(counts.groups, usable, strict=True) if u],
        }
    return evidence


def _blank_disparities(evidence: dict[str, Any]) -> None:
    """No number where there is nothing to compare: the policy must see "not measured"."""
    for section in (evidence, evidence["to_overall"]):
        for name in METRIC_KEYS:
            section[name] = None
    evidence["four_fifths"].update(
        {"ratio": None, "passed": None, "reference_group": None, "failing_groups": []}
    )


def _ci(k: Any, n: Any, z: float) -> list[float] | None:
    iv = wilson_interval(float(k), float(n), z)
    return None if iv is None else [iv[0], iv[1]]
