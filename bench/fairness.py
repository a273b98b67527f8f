"""Benchmark: Warden fairness vs fairlearn MetricFrame, same data, same answers.

Data: ``n`` rows, binary labels and predictions, two sensitive features given as string
arrays (``sex``: 2 values, ``region``: 2 values → 4 intersectional groups; ``--groups-per-
feature 4`` gives 4 values each → 16 groups). Both sides get the same NumPy arrays.

* fairlearn: one ``MetricFrame`` over both features (intersectional) with selection rate,
  TPR, FPR, FNR, TNR, precision, accuracy and count, plus ``demographic_parity_difference``,
  ``demographic_parity_ratio``, ``equalized_odds_difference`` and ``equalized_odds_ratio``;
* Warden: ``FairnessCounts.from_arrays`` + ``fairness_evidence`` (all of the above plus
  ``to_overall``, ``mean`` aggregation, Wilson intervals and the four-fifths rule).

Both sides are timed the same way: one untimed warm-up call on the full data, then the best
of ``--repeat`` runs. The results (every disparity metric, the set of groups and every
per-group rate) are checked equal to 1e-12 with explicit raises (not ``assert``, which
``python -O`` skips) before the times are printed. Run::

    .venv/bin/python bench/fairness.py            # 100k and 1M rows
    .venv/bin/python bench/fairness.py --quick    # 100k only
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fairlearn.metrics as flm  # noqa: E402
from sklearn.metrics import accuracy_score, precision_score  # noqa: E402

from agent.checks.fairness import FairnessCounts, fairness_evidence  # noqa: E402


def make(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Labels, predictions and two sensitive features with ``k`` values each."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(np.array(["F", "M", "X", "U"][:k], dtype=object), n)
    region = rng.choice(np.array(["north", "south", "east", "west"][:k], dtype=object), n)
    y = rng.integers(0, 2, n)
    bias = np.where(sex == "F", -0.1, 0.05)
    p = (rng.random(n) < 0.45 + 0.3 * y + bias).astype(np.int64)
    return y, p, {"sex": sex, "region": region}


def run_fairlearn(y, p, sens):
    sf = pd.DataFrame(sens)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mf = flm.MetricFrame(
            metrics={
                "selection_rate": flm.selection_rate,
                "tpr": flm.true_positive_rate,
                "fpr": flm.false_positive_rate,
                "fnr": flm.false_negative_rate,
                "tnr": flm.true_negative_rate,
                "precision": lambda a, b: precision_score(a, b, zero_division=0),
                "accuracy": accuracy_score,
                "count": flm.count,
            },
            y_true=y,
            y_pred=p,
            sensitive_features=sf,
        )
        out = {
            "by_group": mf.by_group,
            "demographic_parity_difference": flm.demographic_parity_difference(
                y, p, sensitive_features=sf
            ),
            "demographic_parity_ratio": flm.demographic_parity_ratio(y, p, sensitive_features=sf),
            "equalized_odds_difference": flm.equalized_odds_difference(y, p, sensitive_features=sf),
            "equalized_odds_ratio": flm.equalized_odds_ratio(y, p, sensitive_features=sf),
        }
    return out


def run_warden(y, p, sens):
    return fairness_evidence(FairnessCounts.from_arrays(y, p, sens))


class Mismatch(RuntimeError):
    """Warden and fairlearn disagree: the benchmark's times mean nothing."""


def _require(ok: bool, what: str) -> None:
    # An explicit raise, not ``assert``: the check must also run under ``python -O``.
    if not ok:
        raise Mismatch(what)


def check_equal(fl, wd) -> None:
    """Raise :class:`Mismatch` unless every metric, group and per-group rate agrees."""
    for k in (
        "demographic_parity_difference",
        "demographic_parity_ratio",
        "equalized_odds_difference",
        "equalized_odds_ratio",
    ):
        _require(abs(fl[k] - wd[k]) <= 1e-12, f"{k}: fairlearn {fl[k]!r}, warden {wd[k]!r}")
    by = fl["by_group"]
    # fairlearn lists every combination of feature values; unobserved ones have no count.
    observed = by[by["count"].notna() & (by["count"] > 0)]
    fl_groups = {
        "|".join(map(str, idx if isinstance(idx, tuple) else (idx,))) for idx in observed.index
    }
    wd_groups = set(wd["groups"])
    _require(
        fl_groups == wd_groups,
        f"group sets differ: only fairlearn {sorted(fl_groups - wd_groups)}, "
        f"only warden {sorted(wd_groups - fl_groups)}",
    )
    for g, e in wd["groups"].items():
        row = by.loc[tuple(g.split("|"))]
        _require(e["n"] == row["count"], f"{g}: n {e['n']} != fairlearn count {row['count']}")
        for m in ("selection_rate", "tpr", "fpr", "fnr", "tnr", "precision", "accuracy"):
            _require(abs(e[m] - row[m]) <= 1e-12, f"{g} {m}: warden {e[m]!r}, fairlearn {row[m]!r}")


def timed(fn, *args, repeat: int):
    """Best wall time of ``repeat`` calls, after one untimed warm-up call on the same data."""
    result = fn(*args)  # warm-up: imports, caches and first-call allocation, for both sides
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> int:
    ap = argparse.ArgumentParser(description="Warden fairness vs fairlearn")
    ap.add_argument("--quick", action="store_true", help="100k rows only")
    ap.add_argument("--groups-per-feature", type=int, default=2, choices=(2, 3, 4))
    ap.add_argument(
        "--repeat", type=int, default=3, help="timed runs per side, best kept (default 3)"
    )
    args = ap.parse_args()
    sizes = [100_000] if args.quick else [100_000, 1_000_000]
    k = args.groups_per_feature
    print(f"fairness: 2 sensitive features x {k} values = {k * k} intersectional groups")
    print(f"{'rows':>10} {'fairlearn s':>12} {'warden s':>10} {'ratio':>8}")
    ratios = {}
    for n in sizes:
        y, p, sens = make(n, k)
        # Same policy for both sides: one warm-up call, then best of --repeat.
        t_fl, fl = timed(run_fairlearn, y, p, sens, repeat=args.repeat)
        t_wd, wd = timed(run_warden, y, p, sens, repeat=args.repeat)
        check_equal(fl, wd)
        ratios[n] = t_fl / t_wd
        print(f"{n:>10,} {t_fl:>12.3f} {t_wd:>10.4f} {ratios[n]:>7.0f}x   (results equal to 1e-12)")
    if not args.quick:
        goal = ratios[1_000_000] >= 50
        print(f"goal >= 50x at 1M rows: {'met' if goal else 'NOT met'} ({ratios[1_000_000]:.0f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
