"""Fairness metrics derived from per-group confusion counts, equal to fairlearn 0.15.

Pure functions of :class:`~agent.checks.fairness_counts.FairnessCounts`; no row is seen here.
Invariants:

* every per-group rate and every disparity equals fairlearn 0.15's value on the same rows
  (same empty-denominator rule: a rate over no rows is ``0.0``, as scikit-learn's
  ``confusion_matrix(normalize="true")`` makes it; same ``between_groups``/``to_overall``
  definitions; same ``worst_case``/``mean`` aggregation, including how a NaN ratio
  propagates through ``min``/``max``);
* the aggregates use the *kept* groups only: at least ``min_group_size`` rows (unless small
  groups are included) and a non-zero total weight; a disparity is measurable only with at
  least two *usable* groups (kept, and not a missing value) — :func:`unmeasurable_reason`
  says why not otherwise;
* values may be NaN where fairlearn's are; turning NaN into JSON ``null`` is the evidence's
  job (:mod:`agent.checks.fairness`).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from agent.checks.fairness_counts import FN, FP, TN, TP, FairnessCounts
from agent.checks.metric_names import METRIC_KEYS

__all__ = [
    "RATE_NAMES",
    "METRIC_KEYS",
    "Z95",
    "Method",
    "Agg",
    "group_rates",
    "rate_fractions",
    "wilson_interval",
    "fairness_metrics",
    "kept_groups",
    "large_groups",
    "defined_groups",
    "usable_groups",
    "unmeasurable_reason",
]

RATE_NAMES = ("selection_rate", "tpr", "fpr", "fnr", "tnr", "precision", "accuracy")
Z95 = 1.959963984540054  # scipy.stats.norm.ppf(0.975)


Method = Literal["between_groups", "to_overall"]
Agg = Literal["worst_case", "mean"]


def group_rates(c: npt.NDArray[Any]) -> dict[str, npt.NDArray[np.float64]]:
    """Per-row rates of an ``(G, 4)`` counts array, 0.0 over an empty denominator."""
    c = np.asarray(c, dtype=np.float64)
    tn, fp, fn, tp = c[:, TN], c[:, FP], c[:, FN], c[:, TP]
    n = tn + fp + fn + tp
    pos, neg, pred_pos = tp + fn, tn + fp, tp + fp
    return {
        "selection_rate": _div(pred_pos, n),
        "tpr": _div(tp, pos),
        "fpr": _div(fp, neg),
        "fnr": _div(fn, pos),
        "tnr": _div(tn, neg),
        "precision": _div(tp, pred_pos),
        "accuracy": _div(tp + tn, n),
    }


def rate_fractions(c: npt.NDArray[Any]) -> dict[str, tuple[npt.NDArray[Any], npt.NDArray[Any]]]:
    """``{rate: (numerator, denominator)}`` per group, for the Wilson intervals."""
    tn, fp, fn, tp = c[:, TN], c[:, FP], c[:, FN], c[:, TP]
    n = tn + fp + fn + tp
    return {
        "selection_rate": (fp + tp, n),
        "tpr": (tp, tp + fn),
        "fpr": (fp, tn + fp),
        "fnr": (fn, tp + fn),
        "tnr": (tn, tn + fp),
        "precision": (tp, tp + fp),
        "accuracy": (tp + tn, n),
    }


def _div(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out = np.zeros_like(a, dtype=np.float64)
    np.divide(a, b, out=out, where=b != 0)
    return out


def wilson_interval(successes: float, trials: float, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for ``successes / trials``; ``None`` when ``trials == 0``."""
    if trials <= 0:
        return None
    p = successes / trials
    z2 = z * z
    denom = 1.0 + z2 / trials
    centre = (p + z2 / (2.0 * trials)) / denom
    half = z / denom * math.sqrt(p * (1.0 - p) / trials + z2 / (4.0 * trials * trials))
    return (max(0.0, centre - half), min(1.0, centre + half))


def _difference(values: npt.NDArray[np.float64], overall: float, method: Method) -> float:
    if values.size == 0:
        return math.nan
    if method == "between_groups":
        return float(values.max() - values.min())
    return float(np.abs(values - overall).max())


def _ratio(values: npt.NDArray[np.float64], overall: float, method: Method) -> float:
    # fairlearn: between_groups = min / max (0/0 -> NaN); to_overall = min over groups of
    # (group / overall) folded below 1 with 1/x, NaN entries skipped as pandas' min does.
    if values.size == 0:
        return math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "between_groups":
            return float(np.float64(values.min()) / np.float64(values.max()))
        r = values / np.float64(overall)
        r = np.where(r > 1, 1.0 / r, r)
    r = r[~np.isnan(r)]
    return float(r.min()) if r.size else math.nan


def _worst(a: float, b: float, pick: Literal["max", "min"]) -> float:
    # Python's builtin max/min over [tpr, fpr], exactly as fairlearn calls it on the Series
    # (a NaN first argument wins; a NaN second argument is ignored).
    return max(a, b) if pick == "max" else min(a, b)


def _nanmean2(a: float, b: float) -> float:
    vals = [v for v in (a, b) if not math.isnan(v)]
    return sum(vals) / len(vals) if vals else math.nan


def fairness_metrics(
    counts: FairnessCounts,
    *,
    min_group_size: int = 0,
    include_small_groups: bool = False,
) -> dict[str, dict[str, float]]:
    """The fairlearn disparity metrics from counts, keyed by method then metric name.

    ``{"between_groups": {...}, "to_overall": {...}}``, each with
    ``demographic_parity_{difference,ratio}``, ``equalized_odds_{difference,ratio}``
    (``worst_case``), ``equalized_odds_{difference,ratio}_mean`` and
    ``equal_opportunity_{difference,ratio}``. Values may be NaN where fairlearn's are.
    """
    keep = kept_groups(counts, min_group_size, include_small_groups)
    rates = group_rates(counts.counts[keep])
    overall = group_rates(counts.total.reshape(1, 4))
    out: dict[str, dict[str, float]] = {}
    for method in ("between_groups", "to_overall"):
        m: Method = method
        sr, tpr, fpr = rates["selection_rate"], rates["tpr"], rates["fpr"]
        o_sr, o_tpr, o_fpr = (float(overall[k][0]) for k in ("selection_rate", "tpr", "fpr"))
        tpr_d, fpr_d = _difference(tpr, o_tpr, m), _difference(fpr, o_fpr, m)
        tpr_r, fpr_r = _ratio(tpr, o_tpr, m), _ratio(fpr, o_fpr, m)
        out[method] = {
            "demographic_parity_difference": _difference(sr, o_sr, m),
            "demographic_parity_ratio": _ratio(sr, o_sr, m),
            "equalized_odds_difference": _worst(tpr_d, fpr_d, "max"),
            "equalized_odds_ratio": _worst(tpr_r, fpr_r, "min"),
            "equalized_odds_difference_mean": _nanmean2(tpr_d, fpr_d),
            "equalized_odds_ratio_mean": _nanmean2(tpr_r, fpr_r),
            "equal_opportunity_difference": tpr_d,
            "equal_opportunity_ratio": tpr_r,
        }
    return out


def kept_groups(
    counts: FairnessCounts, min_group_size: int, include_small: bool
) -> npt.NDArray[np.bool_]:
    """Groups that enter the aggregates: large enough, and with a non-zero total weight."""
    return large_groups(counts, min_group_size, include_small) & defined_groups(counts)


def large_groups(
    counts: FairnessCounts, min_group_size: int, include_small: bool
) -> npt.NDArray[np.bool_]:
    """Groups not suppressed by ``min_group_size`` (all of them when small ones are included)."""
    if include_small or min_group_size <= 0:
        return np.ones(len(counts.groups), dtype=bool)
    return np.asarray(counts.rows >= min_group_size, dtype=bool)


def defined_groups(counts: FairnessCounts) -> npt.NDArray[np.bool_]:
    """Groups with a non-zero total weight, i.e. with defined rates."""
    # Unweighted, every listed group has rows; weighted, an all-zero-weight group has no
    # rate at all (fairlearn: NaN, skipped by difference/ratio), not a rate of 0.0.
    return np.asarray(counts.counts.sum(axis=1) > 0, dtype=bool)


def usable_groups(
    counts: FairnessCounts, min_group_size: int, include_small: bool
) -> npt.NDArray[np.bool_]:
    """Groups a disparity can compare: kept for the aggregates, and not a missing value."""
    return kept_groups(counts, min_group_size, include_small) & ~counts.missing_mask


def unmeasurable_reason(
    counts: FairnessCounts, *, min_group_size: int = 0, include_small_groups: bool = False
) -> str | None:
    """Why no disparity can be measured for this feature set, or ``None`` when it can.

    A disparity compares groups, so it needs at least two usable groups (see the module
    docstring). One group alone would give a "perfect" difference of 0 and ratio of 1 —
    exactly what a sensitive column blanked to null looks like — so it gives no number.
    """
    usable = usable_groups(counts, min_group_size, include_small_groups)
    if int(usable.sum()) >= 2:
        return None
    names = [g for g, u in zip(counts.groups, usable, strict=True) if u]
    head = f"fewer than two usable groups (only {names[0]!r})" if names else "no usable group"
    why: list[str] = []
    missing = [g for g, m in zip(counts.groups, counts.missing_mask, strict=True) if m]
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        why.append(f"missing sensitive values are not a group to compare: {shown}")
    large = large_groups(counts, min_group_size, include_small_groups)
    small = [g for g, k, m in zip(counts.groups, large, counts.missing_mask, strict=True)
             if not k and not m]  # fmt: skip
    if small:
        shown = ", ".join(small[:5]) + (", ..." if len(small) > 5 else "")
        why.append(f"suppressed below min_group_size {min_group_size}: {shown}")
    defined = defined_groups(counts)
    weightless = [g for g, d in zip(counts.groups, defined, strict=True) if not d]
    if weightless:
        why.append(f"zero total weight: {', '.join(weightless[:5])}")
    return head + ("; " + "; ".join(why) if why else "")
