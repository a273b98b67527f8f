"""Benchmark: the whole ``warden check run`` on a 10-million-row Parquet validation set.

Generates the credit-risk set (bench/gen_credit.py) into ``bench/out/`` (kept between runs;
regenerated when the row count differs), then runs in a subprocess::

    warden check run --data credit_10m.parquet --label repaid --pred approved \
        --score p_approve --sensitive sex,age_band --reference credit_ref_1m.parquet \
        --drift-columns income,debt_ratio,age,credit_history_years,open_accounts \
        --out evidence.json

checks the evidence against an independent whole-array pass over the file (row count,
accuracy, predicted-positive rate, ROC AUC and per-sex selection rates from pyarrow, NumPy
and scikit-learn; a mismatch raises), and only then reports wall time, rows/s and the
child's peak RSS (``getrusage(RUSAGE_CHILDREN)``),
against the goal of at most 1.5 GB. Performance and fairness stream chunk by chunk; ROC AUC
keeps the score column (8 bytes/row, split by true class). Drift (on by default: the whole
check run) reads one column of each file at a time and compares it against a 1M-row
reference; its peak is one 10M-row column, its sorted copy and the merged CDFs of that pair.

    .venv/bin/python bench/check_run_10m.py              # 10M rows, all checks
    .venv/bin/python bench/check_run_10m.py --quick      # 1M rows
    .venv/bin/python bench/check_run_10m.py --no-drift   # performance and fairness only
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from gen_credit import generate  # noqa: E402

OUT = ROOT / "bench" / "out"
GOAL_BYTES = int(1.5 * 1024**3)


def ensure_data(path: Path, rows: int, *, seed: int, shift: float = 0.0, bias: float = 0.0) -> None:
    """Write ``rows`` rows in 1M-row pieces (the generator's memory stays small)."""
    if path.exists() and pq.ParquetFile(path).metadata.num_rows == rows:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    writer = None
    piece = 1_000_000
    for i, start in enumerate(range(0, rows, piece)):
        table = generate(min(piece, rows - start), seed=seed * 1000 + i, shift=shift, bias=bias)
        if writer is None:
            writer = pq.ParquetWriter(tmp, table.schema)
        writer.write_table(table, row_group_size=262_144)
    assert writer is not None
    writer.close()
    tmp.replace(path)


class Mismatch(RuntimeError):
    """The evidence disagrees with the independent computation: the timing means nothing."""


def verify(ev: dict, data: Path, rows: int) -> list[str]:
    """Check evidence against an independent whole-array pass over ``data``; raise if wrong.

    Reads the label, prediction, score and sex columns whole with pyarrow and recomputes
    the row count, accuracy, predicted-positive rate, ROC AUC (scikit-learn) and the
    per-sex selection rates with NumPy: no Warden code is involved. Explicit raises, not
    ``assert`` (``python -O`` would skip those). Returns the lines of what was checked.
    """
    from sklearn.metrics import roc_auc_score

    t = pq.read_table(data, columns=["repaid", "approved", "p_approve", "sex"])
    y = t["repaid"].to_numpy()
    p = t["approved"].to_numpy()
    score = t["p_approve"].to_numpy()
    sex = pc.fill_null(t["sex"], pa.scalar("missing")).to_numpy(zero_copy_only=False)
    perf, fair = ev["performance"], ev["fairness"]["sex"]
    expected: dict[str, float] = {
        "data.rows": float(rows),
        "performance.n": float(len(y)),
        "fairness.sex.n": float(len(y)),
        "performance.accuracy": float(np.mean(y == p)),
        "performance.predicted_positive_rate": float(np.mean(p == 1)),
        "performance.roc_auc": float(roc_auc_score(y, score)),
        "fairness.sex.overall.selection_rate": float(np.mean(p == 1)),
    }
    got: dict[str, float | None] = {
        "data.rows": ev["data"]["rows"],
        "performance.n": perf["n"],
        "fairness.sex.n": fair["n"],
        "performance.accuracy": perf["accuracy"],
        "performance.predicted_positive_rate": perf["predicted_positive_rate"],
        "performance.roc_auc": perf["roc_auc"],
        "fairness.sex.overall.selection_rate": fair["overall"]["selection_rate"],
    }
    names, inverse = np.unique(sex, return_inverse=True)
    sel = np.bincount(inverse, weights=(p == 1).astype(np.float64)) / np.bincount(inverse)
    if set(fair["groups"]) != set(names.tolist()):
        raise Mismatch(f"sex groups: evidence {sorted(fair['groups'])}, data {names.tolist()}")
    for g, rate in zip(names.tolist(), sel, strict=True):
        expected[f"fairness.sex.groups.{g}.selection_rate"] = float(rate)
        got[f"fairness.sex.groups.{g}.selection_rate"] = fair["groups"][g].get("selection_rate")
    lines = []
    for key, want in expected.items():
        have = got[key]
        if have is None or not abs(have - want) <= 1e-9 * max(1.0, abs(want)):
            raise Mismatch(f"{key}: evidence {have!r}, independent pass {want!r}")
        lines.append(f"  {key:<44} {want:.6f}  ok")
    return lines


def warden_bin() -> str:
    """The ``warden`` script beside this interpreter, else the one on PATH."""
    cand = Path(sys.executable).parent / "warden"
    return str(cand) if cand.exists() else (shutil.which("warden") or "warden")


def main() -> int:
    ap = argparse.ArgumentParser(description="whole check run on a large Parquet file")
    ap.add_argument("--quick", action="store_true", help="1M rows instead of 10M")
    ap.add_argument("--rows", type=int, help="explicit row count")
    ap.add_argument("--no-drift", action="store_true", help="skip drift on the numeric columns")
    args = ap.parse_args()
    rows = args.rows or (1_000_000 if args.quick else 10_000_000)
    data = OUT / f"credit_{rows // 1_000_000 or rows}{'m' if rows >= 1_000_000 else ''}.parquet"
    t0 = time.perf_counter()
    ensure_data(data, rows, seed=1, bias=0.15)
    print(
        f"data: {data} ({rows:,} rows, {data.stat().st_size / 1e6:,.0f} MB), "
        f"ready in {time.perf_counter() - t0:.1f}s"
    )
    cmd = [
        warden_bin(),
        "check",
        "run",
        "--data",
        str(data),
        "--label",
        "repaid",
        "--pred",
        "approved",
        "--score",
        "p_approve",
        "--sensitive",
        "sex,age_band",
        "--out",
        str(OUT / "evidence_10m.json"),
    ]
    if not args.no_drift:
        ref = OUT / "credit_ref_1m.parquet"
        ensure_data(ref, 1_000_000, seed=7, shift=0.2)
        cmd += [
            "--reference",
            str(ref),
            "--drift-columns",
            "income,debt_ratio,age,credit_history_years,open_accounts",
        ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # KiB on Linux
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return 1
    if peak < before * 1024:  # pragma: no cover - another child was bigger; cannot tell
        print("warning: peak RSS may belong to an earlier child process")
    ev = json.loads((OUT / "evidence_10m.json").read_text())
    print(" ".join(cmd[1:]).replace(str(ROOT) + "/", ""))
    # Verify before reporting a rate: a fast wrong answer is not a result.
    t1 = time.perf_counter()
    checked = verify(ev, data, rows)
    print(
        f"evidence equals an independent NumPy/pyarrow/scikit-learn pass "
        f"({len(checked)} values, {time.perf_counter() - t1:.1f}s, not timed):"
    )
    print("\n".join(checked))
    print(
        f"rows: {rows:,}  wall: {wall:.1f}s  rate: {rows / wall:,.0f} rows/s  "
        f"peak RSS: {peak / 1024**2:,.0f} MiB (goal <= {GOAL_BYTES / 1024**2:,.0f} MiB: "
        f"{'met' if peak <= GOAL_BYTES else 'NOT met'})"
    )
    perf, fair = ev["performance"], ev["fairness"]["sex"]
    print(
        f"accuracy {perf['accuracy']:.4f}  roc_auc {perf['roc_auc']:.4f}  "
        f"dp_difference(sex) {fair['demographic_parity_difference']:.4f}"
        + (
            f"  drifted {ev['drift']['number_drifted']}/{ev['drift']['number_of_columns']}"
            if ev["drift"]
            else ""
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
