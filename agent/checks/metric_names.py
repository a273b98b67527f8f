"""The names of the fairness disparity metrics an evidence document carries per feature.

Kept apart from :mod:`agent.checks.disparity` (which computes them with NumPy) so the light
modules that only name them — the model card, the Prometheus metrics — share the one list
without importing NumPy into an idle daemon.
"""

from __future__ import annotations

__all__ = ["METRIC_KEYS"]

METRIC_KEYS = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "equalized_odds_difference_mean",
    "equalized_odds_ratio_mean",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
)
