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
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from agent.data import MISSING_GROUP, factorize
from trust.errors import CheckError

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

GROUP_SEPARATOR = "|"
RATE_NAMES = ("selection_rate", "tpr", "fpr", "fnr", "tnr", "precision", "accuracy")
_TN, _FP, _FN, _TP = 0, 1, 2, 3
_Z95 = 1.959963984540054  # scipy.stats.norm.ppf(0.975)

_METRIC_KEYS = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "equalized_odds_difference_mean",
    "equalized_odds_ratio_mean",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
)

Method = Literal["between_groups", "to_overall"]
Agg = Literal["worst_case", "mean"]


@dataclass(frozen=True, eq=False)
class FairnessCounts:
    """Per-group confusion counts for one sensitive feature or one feature combination.

    ``counts[g] = (tn, fp, fn, tp)`` (weighted sums when built with ``sample_weight``),
    ``rows[g]`` the unweighted number of rows, ``missing[g]`` whether the group stands for
    a missing value of some feature (``"missing"``, or ``"F|missing"`` in an intersection);
    groups are sorted by name. Mergeable.
    """

    features: tuple[str, ...]
    groups: tuple[str, ...]
    counts: npt.NDArray[Any]
    rows: npt.NDArray[np.int64]
    weighted: bool = False
    missing: npt.NDArray[np.bool_] | None = None

    def __post_init__(self) -> None:
        """Derive ``missing`` from the group names when it is not given."""
        if self.missing is None:
            flags = np.fromiter(
                (_name_is_missing(g, len(self.features)) for g in self.groups),
                dtype=bool,
                count=len(self.groups),
            )
            object.__setattr__(self, "missing", flags)

    @property
    def key(self) -> str:
        """The evidence key of this feature set (``"sex"`` or ``"sex|region"``)."""
        return GROUP_SEPARATOR.join(self.features)

    @property
    def total(self) -> npt.NDArray[Any]:
        """Overall ``(tn, fp, fn, tp)`` over every row."""
        return np.asarray(self.counts.sum(axis=0))

    @classmethod
    def from_arrays(
        cls,
        y_true: npt.ArrayLike,
        y_pred: npt.ArrayLike,
        sensitive: Mapping[str, npt.ArrayLike],
        *,
        sample_weight: npt.ArrayLike | None = None,
    ) -> FairnessCounts:
        """Count ``y_true``/``y_pred`` (0/1) per group of the features in ``sensitive``.

        Several features give intersectional groups (every observed combination).
        """
        if not sensitive:
            raise CheckError("fairness needs at least one sensitive feature")
        coded = [(name, *factorize(np.asarray(v))) for name, v in sensitive.items()]
        return _count(
            tuple(n for n, _, _ in coded),
            [c for _, c, _ in coded],
            [g for _, _, g in coded],
            _binary(y_true, "y_true"),
            _binary(y_pred, "y_pred"),
            None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64),
        )

    def merge(self, other: FairnessCounts) -> FairnessCounts:
        """Counts of the union of both row sets (groups matched by name)."""
        if other.features != self.features:
            raise CheckError(f"cannot merge fairness counts for {other.key!r} into {self.key!r}")
        names = sorted(set(self.groups) | set(other.groups))
        index = {g: i for i, g in enumerate(names)}
        weighted = self.weighted or other.weighted
        dtype = np.float64 if weighted else np.int64
        counts = np.zeros((len(names), 4), dtype=dtype)
        rows = np.zeros(len(names), dtype=np.int64)
        missing = np.zeros(len(names), dtype=bool)
        for part in (self, other):
            idx = np.fromiter(
                (index[g] for g in part.groups), dtype=np.int64, count=len(part.groups)
            )
            counts[idx] += part.counts
            rows[idx] += part.rows
            missing[idx] |= part.missing_mask
        return FairnessCounts(self.features, tuple(names), counts, rows, weighted, missing)

    @property
    def missing_mask(self) -> npt.NDArray[np.bool_]:
        """Per group: whether it stands for a missing value of some feature."""
        assert self.missing is not None  # set by __post_init__
        return self.missing

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (aggregates only) that :meth:`from_dict` reads back."""
        return {
            "features": list(self.features),
            "weighted": self.weighted,
            "groups": {
                g: {
                    "n": int(self.rows[i]),
                    "tn": _plain(self.counts[i, _TN]),
                    "fp": _plain(self.counts[i, _FP]),
                    "fn": _plain(self.counts[i, _FN]),
                    "tp": _plain(self.counts[i, _TP]),
                    "missing": bool(self.missing_mask[i]),
                }
                for i, g in enumerate(self.groups)
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FairnessCounts:
        """Inverse of :meth:`to_dict`."""
        weighted = bool(data.get("weighted", False))
        groups = sorted(data["groups"])
        dtype = np.float64 if weighted else np.int64
        counts = np.array(
            [[data["groups"][g][k] for k in ("tn", "fp", "fn", "tp")] for g in groups],
            dtype=dtype,
        ).reshape(len(groups), 4)
        rows = np.array([data["groups"][g]["n"] for g in groups], dtype=np.int64)
        features = tuple(data["features"])
        missing = np.array(
            [bool(data["groups"][g].get("missing", _name_is_missing(g, len(features))))
             for g in groups],
            dtype=bool,
        )  # fmt: skip
        return cls(features, tuple(groups), counts, rows, weighted, missing)


def _name_is_missing(group: str, n_features: int) -> bool:
    """Whether a group name stands for a missing value (when no flag was recorded).

    For an intersection any ``|``-separated part equal to ``"missing"`` counts; a value that
    itself holds the separator can only make this err towards "not usable", never "usable".
    """
    if n_features <= 1:
        return group == MISSING_GROUP
    return MISSING_GROUP in group.split(GROUP_SEPARATOR)


def _plain(x: Any) -> int | float:
    return int(x) if isinstance(x, (np.integer, int)) else float(x)


def _binary(values: npt.ArrayLike, name: str) -> npt.NDArray[np.int64]:
    arr = np.asarray(values)
    if arr.dtype.kind == "b":
        return arr.astype(np.int64)
    if arr.dtype.kind not in "iuf":
        raise CheckError(f"{name} must be numeric 0/1 for fairness, got dtype {arr.dtype}")
    out = arr.astype(np.int64)
    if len(out) and ((out != arr).any() or out.min() < 0 or out.max() > 1):
        bad = arr[(out != arr) | (out < 0) | (out > 1)][0]
        raise CheckError(f"{name} must be binary (0/1) for fairness, found value {bad!r}")
    return out


def _count(
    features: tuple[str, ...],
    codes: Sequence[npt.NDArray[np.int64]],
    names: Sequence[Sequence[str]],
    y: npt.NDArray[np.int64],
    p: npt.NDArray[np.int64],
    weight: npt.NDArray[np.float64] | None,
) -> FairnessCounts:
    n = len(y)
    if len(p) != n or any(len(c) != n for c in codes) or (weight is not None and len(weight) != n):
        raise CheckError("fairness inputs have different lengths")
    sizes = [max(len(g), 1) for g in names]
    combined = codes[0] if codes else np.zeros(n, dtype=np.int64)
    for c, size in zip(codes[1:], sizes[1:], strict=True):
        combined = combined * size + c
    space = math.prod(sizes)
    if space > 4 * n + 64:  # sparse combination space: compact the codes first
        present, combined = np.unique(combined, return_inverse=True)
    else:
        present = None
    slots = int(present.size if present is not None else space)
    key = combined * 4 + y * 2 + p
    if weight is None:
        flat = np.bincount(key, minlength=slots * 4)
        counts = flat.reshape(slots, 4)
        rows = counts.sum(axis=1)
    else:
        counts = np.bincount(key, weights=weight, minlength=slots * 4).reshape(slots, 4)
        rows = np.bincount(combined, minlength=slots)
    observed = np.flatnonzero(rows)
    full_codes = present[observed] if present is not None else observed
    parts = np.unravel_index(full_codes, sizes) if len(sizes) > 1 else (full_codes,)
    group_names = [
        GROUP_SEPARATOR.join(names[f][int(parts[f][i])] for f in range(len(names)))
        for i in range(len(observed))
    ]
    # Known per part here, so a value that itself contains the separator cannot confuse it.
    group_missing = [
        any(names[f][int(parts[f][i])] == MISSING_GROUP for f in range(len(names)))
        for i in range(len(observed))
    ]
    order: list[int] = sorted(range(len(group_names)), key=group_names.__getitem__)
    sel = observed[np.asarray(order, dtype=np.int64)]
    return FairnessCounts(
        features,
        tuple(group_names[i] for i in order),
        np.ascontiguousarray(counts[sel]),
        np.asarray(rows[sel], dtype=np.int64),
        weight is not None,
        np.array([group_missing[i] for i in order], dtype=bool),
    )


class FairnessAccumulator:
    """Streams chunks into :class:`FairnessCounts` for several feature sets at once.

    ``feature_sets`` lists tuples of sensitive feature names; each tuple is one evidence
    entry (one feature, or an intersection). Each chunk's features are coded once.
    """

    def __init__(self, feature_sets: Sequence[Sequence[str]]) -> None:
        """Start with no rows for every feature set."""
        self.feature_sets = [tuple(fs) for fs in feature_sets]
        self._counts: dict[tuple[str, ...], FairnessCounts] = {}

    def update(
        self,
        y_true: npt.ArrayLike,
        y_pred: npt.ArrayLike,
        sensitive: Mapping[str, npt.ArrayLike],
        *,
        sample_weight: npt.ArrayLike | None = None,
    ) -> None:
        """Add one chunk of rows."""
        y = _binary(y_true, "y_true")
        p = _binary(y_pred, "y_pred")
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        needed = {f for fs in self.feature_sets for f in fs}
        coded = {f: factorize(np.asarray(sensitive[f])) for f in needed}
        for fs in self.feature_sets:
            part = _count(fs, [coded[f][0] for f in fs], [coded[f][1] for f in fs], y, p, w)
            prev = self._counts.get(fs)
            self._counts[fs] = part if prev is None else prev.merge(part)

    def result(self) -> list[FairnessCounts]:
        """Counts per feature set, in the order given; raises if no rows were added."""
        missing = [fs for fs in self.feature_sets if fs not in self._counts]
        if missing:
            raise CheckError("no rows were counted for fairness")
        return [self._counts[fs] for fs in self.feature_sets]


def _rates(c: npt.NDArray[Any]) -> dict[str, npt.NDArray[np.float64]]:
    """Per-row rates of an ``(G, 4)`` counts array, 0.0 over an empty denominator."""
    c = np.asarray(c, dtype=np.float64)
    tn, fp, fn, tp = c[:, _TN], c[:, _FP], c[:, _FN], c[:, _TP]
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


def _denominators(c: npt.NDArray[Any]) -> dict[str, tuple[npt.NDArray[Any], npt.NDArray[Any]]]:
    """``{rate: (numerator, denominator)}`` per group, for the Wilson intervals."""
    tn, fp, fn, tp = c[:, _TN], c[:, _FP], c[:, _FN], c[:, _TP]
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


def wilson_interval(successes: float, trials: float, z: float = _Z95) -> tuple[float, float] | None:
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
    keep = _kept(counts, min_group_size, include_small_groups)
    rates = _rates(counts.counts[keep])
    overall = _rates(counts.total.reshape(1, 4))
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


def _kept(
    counts: FairnessCounts, min_group_size: int, include_small: bool
) -> npt.NDArray[np.bool_]:
    """Groups that enter the aggregates: large enough, and with a non-zero total weight."""
    return _large(counts, min_group_size, include_small) & _defined(counts)


def _large(
    counts: FairnessCounts, min_group_size: int, include_small: bool
) -> npt.NDArray[np.bool_]:
    if include_small or min_group_size <= 0:
        return np.ones(len(counts.groups), dtype=bool)
    return np.asarray(counts.rows >= min_group_size, dtype=bool)


def _defined(counts: FairnessCounts) -> npt.NDArray[np.bool_]:
    # Unweighted, every listed group has rows; weighted, an all-zero-weight group has no
    # rate at all (fairlearn: NaN, skipped by difference/ratio), not a rate of 0.0.
    return np.asarray(counts.counts.sum(axis=1) > 0, dtype=bool)


def _usable(
    counts: FairnessCounts, min_group_size: int, include_small: bool
) -> npt.NDArray[np.bool_]:
    """Groups a disparity can compare: kept for the aggregates, and not a missing value."""
    return _kept(counts, min_group_size, include_small) & ~counts.missing_mask


def unmeasurable_reason(
    counts: FairnessCounts, *, min_group_size: int = 0, include_small_groups: bool = False
) -> str | None:
    """Why no disparity can be measured for this feature set, or ``None`` when it can.

    A disparity compares groups, so it needs at least two usable groups (see the module
    docstring). One group alone would give a "perfect" difference of 0 and ratio of 1 —
    exactly what a sensitive column blanked to null looks like — so it gives no number.
    """
    usable = _usable(counts, min_group_size, include_small_groups)
    if int(usable.sum()) >= 2:
        return None
    names = [g for g, u in zip(counts.groups, usable, strict=True) if u]
    head = f"fewer than two usable groups (only {names[0]!r})" if names else "no usable group"
    why: list[str] = []
    missing = [g for g, m in zip(counts.groups, counts.missing_mask, strict=True) if m]
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        why.append(f"missing sensitive values are not a group to compare: {shown}")
    large = _large(counts, min_group_size, include_small_groups)
    small = [g for g, k, m in zip(counts.groups, large, counts.missing_mask, strict=True)
             if not k and not m]  # fmt: skip
    if small:
        shown = ", ".join(small[:5]) + (", ..." if len(small) > 5 else "")
        why.append(f"suppressed below min_group_size {min_group_size}: {shown}")
    defined = _defined(counts)
    weightless = [g for g, d in zip(counts.groups, defined, strict=True) if not d]
    if weightless:
        why.append(f"zero total weight: {', '.join(weightless[:5])}")
    return head + ("; " + "; ".join(why) if why else "")


def _json_num(x: float) -> float | None:
    return None if (x is None or math.isnan(x) or math.isinf(x)) else float(x)


def fairness_evidence(
    counts: FairnessCounts,
    *,
    min_group_size: int = 0,
    include_small_groups: bool = False,
    four_fifths_threshold: float = 0.8,
    confidence_z: float = _Z95,
) -> dict[str, Any]:
    """The evidence entry ``fairness.<feature>`` for one feature set (see the schema).

    When :func:`unmeasurable_reason` gives a reason, every disparity and the four-fifths
    verdict are ``null`` and ``unmeasurable`` holds the reason; otherwise it is ``null``.
    """
    reason = unmeasurable_reason(
        counts, min_group_size=min_group_size, include_small_groups=include_small_groups
    )
    large = _large(counts, min_group_size, include_small_groups)
    defined = _defined(counts)
    keep = large & defined
    rates = _rates(counts.counts)
    dens = _denominators(counts.counts)
    overall_counts = counts.total.reshape(1, 4)
    overall = _rates(overall_counts)
    groups: dict[str, Any] = {}
    for i, g in enumerate(counts.groups):
        small = not bool(large[i])
        entry: dict[str, Any] = {"n": int(counts.rows[i]), "suppressed": small}
        if not small:
            tn, fp, fn, tp = (_plain(v) for v in counts.counts[i])
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
        usable = _usable(counts, min_group_size, include_small_groups)
        evidence["unmeasurable"] = {
            "reason": reason,
            "usable_groups": [g for g, u in zip(counts.groups, usable, strict=True) if u],
        }
    return evidence


def _blank_disparities(evidence: dict[str, Any]) -> None:
    """No number where there is nothing to compare: the policy must see "not measured"."""
    for section in (evidence, evidence["to_overall"]):
        for name in _METRIC_KEYS:
            section[name] = None
    evidence["four_fifths"].update(
        {"ratio": None, "passed": None, "reference_group": None, "failing_groups": []}
    )


def _ci(k: Any, n: Any, z: float) -> list[float] | None:
    iv = wilson_interval(float(k), float(n), z)
    return None if iv is None else [iv[0], iv[1]]
