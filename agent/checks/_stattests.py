"""The drift statistics, computed from sufficient statistics the way evidently 0.7.23 does.

Every function here reproduces one of evidently's ``legacy/calculations/stattests`` modules on
already-cleaned inputs (no NaN, no infinity): the same formulas, the same scipy calls, the same
order of floating-point operations where that order is visible in the result. They take value
counts or sorted values (optionally weighted, which is how a reference profile's quantile
sketch is represented) instead of pandas Series, so that a reference profile and raw arrays
share one implementation.

Invariants:

* ``*_pvalue`` functions return a p-value: drift when it is below the threshold (``ks``:
  at or below, as evidently's ``p_value <= threshold``); distances (``jensenshannon``,
  ``wasserstein``, ``psi``) mean drift when at or above the threshold.
* Counts arrays are aligned on the same union of keys; no key has zero count on both sides.
* Sorted-value inputs are ascending float64; weights, when given, are positive and aligned.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats as _stats
from scipy.spatial import distance as _distance

__all__ = [
    "Method",
    "METHODS",
    "z_pvalue",
    "chisquare_pvalue",
    "percents_from_counts",
    "fill_zeroes",
    "jensenshannon_distance",
    "psi_value",
    "sturges_edges",
    "histogram_sorted",
    "histogram_interpolated",
    "wasserstein_norm",
    "ks_statistic",
    "ks_pvalue",
]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Method:
    """One drift method: its evidently name, default threshold and comparison direction.

    ``kind`` is ``"pvalue"`` (drift when the statistic is below the threshold) or
    ``"distance"`` (drift when the statistic is at or above it); ``inclusive`` says whether
    equality with the threshold counts as drift for a p-value (only ``ks`` does).
    """

    name: str
    default_threshold: float
    kind: str
    inclusive: bool = False

    def drifted(self, statistic: float, threshold: float) -> bool:
        """The verdict exactly as evidently compares (NaN never drifts)."""
        if self.kind == "pvalue":
            return bool(statistic <= threshold) if self.inclusive else bool(statistic < threshold)
        return bool(statistic >= threshold)


#: The methods Warden implements, keyed by evidently's stattest name.
METHODS: dict[str, Method] = {
    "ks": Method("ks", 0.05, "pvalue", inclusive=True),
    "chisquare": Method("chisquare", 0.05, "pvalue"),
    "z": Method("z", 0.05, "pvalue"),
    "jensenshannon": Method("jensenshannon", 0.1, "distance"),
    "wasserstein": Method("wasserstein", 0.1, "distance"),
    "psi": Method("psi", 0.1, "distance"),
}


def z_pvalue(ref_counts: NDArray[np.int64], cur_counts: NDArray[np.int64]) -> float:
    """Two-proportion Z-test p-value (evidently ``z_stattest``).

    Counts are aligned on the union of keys *sorted ascending*: evidently tests "value equals
    the smallest key" against "anything else", so only index 0 is special.
    """
    ref_present = np.flatnonzero(ref_counts)
    cur_present = np.flatnonzero(cur_counts)
    if len(ref_present) == 1 and len(cur_present) == 1 and ref_present[0] == cur_present[0]:
        return 1.0
    n1 = int(ref_counts.sum())
    n2 = int(cur_counts.sum())
    # Same operation order as evidently's proportions_diff_z_stat_ind.
    p1 = float(n1 - int(ref_counts[0])) / n1
    p2 = float(n2 - int(cur_counts[0])) / n2
    pooled = float(p1 * n1 + p2 * n2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - _stats.norm.cdf(np.abs(z))))


def chisquare_pvalue(ref_counts: NDArray[np.int64], cur_counts: NDArray[np.int64]) -> float:
    """Pearson chi-square p-value of current counts against scaled reference counts."""
    k_norm = int(cur_counts.sum()) / int(ref_counts.sum())
    f_exp = ref_counts.astype(np.float64) * k_norm
    f_obs = cur_counts.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(_stats.chisquare(f_obs, f_exp)[1])


def percents_from_counts(counts: NDArray[np.int64] | FloatArray, n: float) -> FloatArray:
    """Counts divided by the number of rows, as evidently's ``get_binned_data`` returns."""
    return np.asarray(counts, dtype=np.float64) / n


def fill_zeroes(percents: FloatArray) -> FloatArray:
    """Evidently's zero filling: zeros become min(nonzero)/1e6, or 1e-4 if that min > 1e-4."""
    out = percents.copy()
    nonzero = out[out != 0]
    smallest = float(nonzero.min())
    np.place(out, out == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001)
    return out


def jensenshannon_distance(ref_percents: FloatArray, cur_percents: FloatArray) -> float:
    """Jensen-Shannon distance (natural log), as ``scipy.spatial.distance.jensenshannon``."""
    return float(_distance.jensenshannon(ref_percents, cur_percents, None))


def psi_value(ref_percents: FloatArray, cur_percents: FloatArray) -> float:
    """Population stability index on zero-filled percents."""
    return float(np.sum((ref_percents - cur_percents) * np.log(ref_percents / cur_percents)))


def sturges_edges(lo: float, hi: float, size: int, *, integer: bool = False) -> FloatArray:
    """``np.histogram_bin_edges(combined, bins="sturges")`` from min, max and size alone.

    Sturges' width depends only on the range and the number of values, which is why a
    reference profile (exact min, max and count) reproduces evidently's edges exactly.
    ``integer`` mirrors numpy's rule that integer data never gets bins narrower than 1.
    """
    ptp = hi - lo
    first, last = lo, hi
    if first == last:
        first, last = first - 0.5, last + 0.5
    width = ptp / (np.log2(size) + 1.0)
    if width:
        if integer and width < 1:
            width = 1
        n_bins = int(np.ceil((last - first) / width))
    else:
        n_bins = 1
    return np.linspace(first, last, n_bins + 1, endpoint=True, dtype=np.float64)


def histogram_sorted(
    values: FloatArray, edges: FloatArray, cum_weights: FloatArray | None = None
) -> FloatArray:
    """``np.histogram(values, edges)[0]`` for ascending ``values`` (optionally weighted).

    Bins are closed on the left, the last one on both sides, as numpy's. ``cum_weights`` is
    the running sum of the weights (``None`` for unit weights).
    """
    idx = np.concatenate(
        [
            np.searchsorted(values, edges[:-1], side="left"),
            np.searchsorted(values, edges[-1:], side="right"),
        ]
    )
    if cum_weights is None:
        return np.diff(idx).astype(np.float64)
    cum = np.concatenate([[0.0], cum_weights])
    return np.diff(cum[idx])


def histogram_interpolated(
    values: FloatArray, weights: FloatArray, edges: FloatArray, lo: float, hi: float
) -> FloatArray:
    """Bin masses of a weighted quantile sketch, reading its CDF as piecewise linear.

    Each sketch point stands for rows spread around it, so its mass is centred on it and the
    CDF runs linearly from 0 at the exact minimum to the total at the exact maximum. Far
    better than a step CDF for sparse bins; only used for approximate (sketched) sides.
    """
    cum = np.cumsum(weights)
    centre = cum - weights / 2.0
    # Equal values would make the interpolation abscissae repeat: keep the last of each run.
    last = np.append(values[1:] != values[:-1], True)
    xs = np.concatenate([[lo], values[last], [hi]])
    ys = np.concatenate([[0.0], centre[last], [float(cum[-1])]])
    # Points at the extremes already sit on them; drop duplicates so xs stays increasing.
    keep = np.append(xs[1:] > xs[:-1], True)
    xs, ys = xs[keep], ys[keep]
    ys[-1] = float(cum[-1])
    # Sturges edges span min..max of reference ∪ current, so np.interp's clamping gives 0
    # below the first edge and the total above the last: all mass is binned.
    return np.diff(np.interp(edges, xs, ys))


def _merged_cdfs(
    ref_sorted: FloatArray,
    ref_weights: FloatArray | None,
    cur_sorted: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """All values merged ascending, with both empirical CDFs evaluated at each of them.

    A stable sort of two concatenated sorted runs is a linear merge (timsort finds the runs),
    which is why this is several times faster than scipy's searchsorted formulation. At
    ties the two CDFs are only both complete at the last tied position, but the gap to the
    next value is zero before that, so integrals and suprema over gaps are unaffected.
    """
    both = np.concatenate([ref_sorted, cur_sorted])
    order = np.argsort(both, kind="stable")
    merged = both[order]
    del both  # each step frees what it no longer needs: these arrays are N + M long
    is_ref = order < len(ref_sorted)
    if ref_weights is None:
        del order
        ref_cum = np.cumsum(is_ref, dtype=np.float64)
    else:
        w = np.zeros(len(merged))
        w[: len(ref_sorted)] = ref_weights
        ref_cum = np.cumsum(w[order])
        del order, w
        ref_cum /= float(np.sum(ref_weights))
    if ref_weights is None:
        ref_cum /= len(ref_sorted)
    np.logical_not(is_ref, out=is_ref)
    cur_cum = np.cumsum(is_ref, dtype=np.float64)
    del is_ref
    cur_cum /= len(cur_sorted)
    return merged, ref_cum, cur_cum


def wasserstein_norm(
    ref_sorted: FloatArray,
    ref_weights: FloatArray | None,
    cur_sorted: FloatArray,
    ref_std: float,
) -> float:
    """First Wasserstein distance divided by max(std(reference), 0.001) (evidently's norm)."""
    merged, ref_cum, cur_cum = _merged_cdfs(ref_sorted, ref_weights, cur_sorted)
    # |F_ref - F_cur| · gap, computed in place (same element values, same summation order
    # as the expression np.sum(np.abs(ref_cum[:-1] - cur_cum[:-1]) * np.diff(merged))).
    terms = ref_cum[:-1]
    terms -= cur_cum[:-1]
    del cur_cum
    np.abs(terms, out=terms)
    terms *= np.diff(merged)
    del merged
    distance = float(np.sum(terms))
    return distance / max(float(ref_std), 0.001)


def ks_statistic(
    ref_sorted: FloatArray, ref_weights: FloatArray | None, cur_sorted: FloatArray
) -> float:
    """Two-sided Kolmogorov-Smirnov statistic sup |F_ref - F_cur| over all observed values."""
    merged, ref_cum, cur_cum = _merged_cdfs(ref_sorted, ref_weights, cur_sorted)
    # Only the last position of a run of equal values carries both complete CDFs.
    last_of_run = np.append(merged[1:] != merged[:-1], True)
    diff = ref_cum[last_of_run] - cur_cum[last_of_run]
    return float(max(np.clip(-diff.min(), 0, 1), diff.max()))


def ks_pvalue(d: float, n1: int, n2: int) -> float:
    """The p-value ``scipy.stats.ks_2samp(method="auto")`` attaches to statistic ``d``.

    Exact distribution when both samples have at most 10 000 values, Smirnov's asymptotic
    ``kstwo`` otherwise, as scipy decides. Used where the samples themselves are not at
    hand (a reference profile); raw arrays go through ``ks_2samp`` itself.
    """
    mode = "exact" if max(n1, n2) <= 10000 else "asymp"
    prob = -np.inf
    if mode == "exact":
        try:
            from scipy.stats._stats_py import _attempt_exact_2kssamp

            g = math.gcd(n1, n2)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                success, d, prob = _attempt_exact_2kssamp(n1, n2, g, d, "two-sided")
        except ImportError:  # pragma: no cover - scipy moved its private helper
            success = False
        if not success:
            mode = "asymp"
    if mode == "asymp":
        m, n = sorted([float(n1), float(n2)], reverse=True)
        en = m * n / (m + n)
        prob = _stats.kstwo.sf(d, np.round(en))
    return float(np.clip(prob, 0, 1))
