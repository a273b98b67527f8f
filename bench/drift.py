"""Benchmark: Warden's drift check against evidently's ``DataDriftPreset`` on the same data.

Generates a reference and a current data set of N rows × 10 numerical + 3 categorical
columns (some columns shifted), runs ``Report([DataDriftPreset()])`` and
``agent.checks.drift.drift_evidence`` on them in one process, checks the same columns,
identical per-column methods and verdicts (statistics within 1e-6) and the same data-set
verdict (explicit raises, which ``python -O`` keeps), and prints both times and the
speed-up. Evidently gets a pandas DataFrame, Warden the same columns as NumPy
arrays; building those is outside both timings.

    .venv/bin/python bench/drift.py            # 100k and 1M rows (evidently takes ~1 min at 1M)
    .venv/bin/python bench/drift.py --quick    # 20k rows
    .venv/bin/python bench/drift.py --rows 50000 --rows 200000
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.checks.drift import drift_evidence  # noqa: E402
from tests.checks._evidently_oracle import evidently_drift  # noqa: E402  (the tests' oracle)

N_NUM = 10
N_CAT = 3


def make_data(n: int, shift: float, seed: int) -> dict[str, np.ndarray]:
    """10 numerical columns (the first three shifted by ``shift``) and 3 categorical ones."""
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {}
    for i in range(N_NUM):
        s = shift if i < 3 else 0.0
        if i % 3 == 0:
            cols[f"num{i}"] = rng.normal(s, 1.0, n)
        elif i % 3 == 1:
            cols[f"num{i}"] = rng.lognormal(s, 0.5, n)
        else:
            cols[f"num{i}"] = rng.uniform(s, 10.0 + s, n)
    levels = np.array(["north", "south", "east", "west", "centre", "islands"], dtype=object)
    for j in range(N_CAT):
        p = np.array([6, 5, 4, 3, 2, 1], dtype=float)
        if j == 0 and shift:
            p = p[::-1]
        cols[f"cat{j}"] = rng.choice(levels, n, p=p / p.sum())
    return cols


class Mismatch(RuntimeError):
    """Warden and evidently disagree: the benchmark's times mean nothing."""


def check_equal(ours: dict[str, Any], theirs: dict[str, Any], theirs_dataset: bool) -> None:
    """Raise :class:`Mismatch` unless columns, methods, verdicts and statistics agree.

    Explicit raises, not ``assert``: the check must also run under ``python -O``.
    """
    if set(ours["columns"]) != set(theirs):
        raise Mismatch(
            f"column sets differ: warden {sorted(ours['columns'])}, evidently {sorted(theirs)}"
        )
    for col, ev in theirs.items():
        w = ours["columns"][col]
        if w["method"] != ev["method"] or w["drifted"] != ev["drifted"]:
            raise Mismatch(f"{col}: warden {w}, evidently {ev}")
        if not abs(w["statistic"] - ev["statistic"]) <= 1e-6 * max(1, abs(ev["statistic"])):
            raise Mismatch(
                f"{col}: statistic warden {w['statistic']!r}, evidently {ev['statistic']!r}"
            )
    if ours["dataset_drift"] != theirs_dataset:
        raise Mismatch(f"dataset_drift: warden {ours['dataset_drift']}, evidently {theirs_dataset}")


def run(n: int) -> float:
    """One size: time both, check agreement, print a line; returns the speed-up."""
    import pandas as pd

    ref = make_data(n, 0.0, seed=1)
    cur = make_data(n, 0.4, seed=2)
    ref_df, cur_df = pd.DataFrame(ref), pd.DataFrame(cur)

    t0 = time.perf_counter()
    ours = drift_evidence(ref, cur)
    t_warden = time.perf_counter() - t0

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        result = evidently_drift(ref_df, cur_df)
        t_evidently = time.perf_counter() - t0
    theirs, theirs_dataset = result["columns"], result["dataset_drift"]

    check_equal(ours, theirs, theirs_dataset)
    ratio = t_evidently / t_warden
    print(
        f"rows={n:>9,}  cols={N_NUM}+{N_CAT}  warden={t_warden:8.3f}s  "
        f"evidently={t_evidently:8.3f}s  speed-up={ratio:6.1f}x  "
        f"drifted={ours['number_drifted']}/{ours['number_of_columns']} "
        f"dataset_drift={ours['dataset_drift']}  verdicts identical"
    )
    return ratio


def main() -> int:
    """Parse flags and run the sizes asked for."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small run (20k rows)")
    parser.add_argument("--rows", type=int, action="append", help="row count (repeatable)")
    args = parser.parse_args()
    sizes = args.rows or ([20_000] if args.quick else [100_000, 1_000_000])
    t0 = time.perf_counter()
    import evidently  # noqa: F401 - import once, outside the timings

    print(f"evidently import: {time.perf_counter() - t0:.1f}s (not timed below)")
    for n in sizes:
        run(n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
