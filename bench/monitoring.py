"""Benchmark: one production monitoring window, Warden's monitor beside evidently's drift report.

A reference of N rows × 10 numerical + 3 categorical columns (``bench/drift.py``'s
``make_data``) is profiled once, as ``warden profile build`` does (not timed: a node builds
its profile once). One inference window of N rows (three numerical columns and one
categorical shifted) is published as 10 Parquet batches into a monitor's inputs directory.
Timed, in one process:

* **ingest** — ``Monitor.poll`` while the window is open: every batch read, hashed, its
  times parsed, its rows spooled (Parquet, on the node's disk);
* **evaluate** — ``Monitor.poll`` after the window closed: the window's drift from the
  spool against the profile, the ``drift`` result with its evidence digest;
* **evidently** — ``Report([DataDriftPreset()])`` on the raw reference and the same window
  (pandas DataFrames built outside the timing; evidently's import is not timed either, nor
  Warden's one-time start-up: SciPy's import, the evidence schema's compilation).

The verdicts must be identical — per column the method and drifted, and the data-set
drift — with statistics equal to 1e-6 where the profile is exact, and within the profile's
documented tolerance where it is a sketch (Wasserstein: 0.005 absolute; see
``agent/checks/profile.py``); any difference raises (explicit raises, which ``python -O``
keeps). Ratios: evidently / evaluate, and evidently / (ingest + evaluate). Goal ≥ 50× on
the evaluation at 1M rows.

    .venv/bin/python bench/monitoring.py            # 1M-row window (evidently takes ~1 min)
    .venv/bin/python bench/monitoring.py --quick    # 50k rows
    .venv/bin/python bench/monitoring.py --rows 200000
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# Run as a script, sys.path[0] is bench/, whose agent.py would shadow the ``agent`` package:
# the repository takes its place, and bench/ (for drift.make_data) goes last.
sys.path[0] = str(REPO)
sys.path.append(str(REPO / "bench"))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from drift import Mismatch, make_data  # noqa: E402  (bench/drift.py: the same data shapes)

from agent.checks.profile import ReferenceProfile  # noqa: E402
from agent.checks.profile_format import profile_to_bytes  # noqa: E402
from agent.config import ModelConfig  # noqa: E402
from agent.monitoring import Monitor, MonitorConfig, WindowResult  # noqa: E402
from tests.checks._evidently_oracle import evidently_drift  # noqa: E402  (the tests' oracle)

BATCHES = 10
WINDOW_START = datetime(2026, 5, 1, tzinfo=UTC)
#: Largest difference allowed between a sketched reference's statistic and evidently's.
SKETCH_TOLERANCE = {"wasserstein": 0.005}


def check_verdicts(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    """Raise :class:`Mismatch` unless columns, methods, verdicts (and statistics) agree."""
    cols = theirs["columns"]
    if set(ours["columns"]) != set(cols):
        raise Mismatch(f"column sets differ: warden {sorted(ours['columns'])}, "
                       f"evidently {sorted(cols)}")
    for name, ev in cols.items():
        w = ours["columns"][name]
        if (w["method"], w["drifted"]) != (ev["method"], ev["drifted"]):
            raise Mismatch(f"{name}: warden {w}, evidently {ev}")
        if w["exact"]:
            ok = abs(w["statistic"] - ev["statistic"]) <= 1e-6 * max(1.0, abs(ev["statistic"]))
        else:
            tol = SKETCH_TOLERANCE.get(w["method"])
            if tol is None:
                raise Mismatch(f"{name}: method {w['method']} on a sketched reference has no "
                               "documented tolerance")
            ok = abs(w["statistic"] - ev["statistic"]) <= tol
        if not ok:
            raise Mismatch(f"{name}: statistic warden {w['statistic']!r} "
                           f"(exact={w['exact']}), evidently {ev['statistic']!r}")
    if ours["dataset_drift"] != theirs["dataset_drift"]:
        raise Mismatch(f"dataset_drift: warden {ours['dataset_drift']}, "
                       f"evidently {theirs['dataset_drift']}")


def publish_window(inputs: Path, current: dict[str, np.ndarray], n: int) -> None:
    """The window's rows as BATCHES Parquet files, times spread over the hour, with ids."""
    rng = np.random.default_rng(3)
    offsets = np.sort(rng.integers(0, 3_600_000_000, n))  # microseconds into the hour
    start_us = int(WINDOW_START.timestamp()) * 1_000_000
    edges = np.linspace(0, n, BATCHES + 1, dtype=np.int64)
    for b in range(BATCHES):
        lo, hi = int(edges[b]), int(edges[b + 1])
        columns: dict[str, Any] = {
            "timestamp": pa.array(start_us + offsets[lo:hi], pa.timestamp("us", tz="UTC")),
            "id": pa.array([f"req-{i}" for i in range(lo, hi)]),
        }
        columns.update({k: v[lo:hi] for k, v in current.items()})
        tmp = inputs / f".batch-{b:02d}.parquet"  # write, then rename in: as publishers do
        pq.write_table(pa.table(columns), tmp)
        tmp.rename(inputs / f"batch-{b:02d}.parquet")


def run(n: int) -> float:
    """One window of ``n`` rows: time ingest, evaluation and evidently; returns the ratio."""
    import pandas as pd

    from agent.checks.evidence import build_evidence

    # One-time start-up costs are paid outside the timings, as evidently's import is: the
    # checks' imports (SciPy) and the evidence schema's compilation.
    small = make_data(2000, 0.0, seed=9)
    build_evidence(drift=ReferenceProfile.build([small]).compare(small))

    work = Path(tempfile.mkdtemp(prefix="warden-bench-monitoring-"))
    try:
        reference = make_data(n, 0.0, seed=1)
        current = make_data(n, 0.4, seed=2)
        profile = ReferenceProfile.build(
            {k: v[i : i + 262_144] for k, v in reference.items()} for i in range(0, n, 262_144))
        (work / "ref.profile").write_bytes(profile_to_bytes(profile))
        inputs = work / "inputs"
        inputs.mkdir()
        publish_window(inputs, current, n)
        model = ModelConfig(name="credit", data=work / "unused.csv", label="label")
        cfg = MonitorConfig(inputs=inputs, profile=work / "ref.profile", min_rows=100)
        monitor = Monitor(model, cfg, work / "state")

        t0 = time.perf_counter()
        if monitor.poll(WINDOW_START + timedelta(minutes=59)):  # open window: nothing due
            raise Mismatch("a result before the window closed")
        t_ingest = time.perf_counter() - t0
        t0 = time.perf_counter()
        results = monitor.poll(WINDOW_START + timedelta(hours=1, minutes=2))
        t_eval = time.perf_counter() - t0
        drift_results = [r for r in results if r.kind == "drift"]
        if len(drift_results) != 1 or drift_results[0].status != "evaluated":
            raise Mismatch(f"expected one evaluated drift result, got {results}")
        result: WindowResult = drift_results[0]
        if result.rows != n:
            raise Mismatch(f"window holds {result.rows} rows, published {n}")
        ours = dict(result.drift or {})
        ours["columns"] = {k: dict(v) for k, v in ours["columns"].items()}

        ref_df, cur_df = pd.DataFrame(reference), pd.DataFrame(current)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            theirs = evidently_drift(ref_df, cur_df)
            t_evidently = time.perf_counter() - t0
        check_verdicts(ours, theirs)
        ratio = t_evidently / t_eval
        print(
            f"rows={n:>9,}  cols=10+3  batches={BATCHES}  ingest={t_ingest:7.3f}s  "
            f"evaluate={t_eval:7.3f}s  evidently={t_evidently:8.3f}s  "
            f"speed-up={ratio:6.1f}x (evaluate)  "
            f"{t_evidently / (t_ingest + t_eval):6.1f}x (ingest+evaluate)  "
            f"drifted={ours['number_drifted']}/{ours['number_of_columns']} "
            f"dataset_drift={ours['dataset_drift']}  verdicts identical"
        )
        return ratio
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    """Parse flags and run the sizes asked for."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small window (50k rows)")
    parser.add_argument("--rows", type=int, action="append", help="window rows (repeatable)")
    args = parser.parse_args()
    sizes = args.rows or ([50_000] if args.quick else [1_000_000])
    t0 = time.perf_counter()
    import evidently  # noqa: F401 - import once, outside the timings

    print(f"evidently import: {time.perf_counter() - t0:.1f}s (not timed below)")
    for n in sizes:
        run(n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
