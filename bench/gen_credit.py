"""Generate a synthetic credit-risk validation set (for the demo and the benchmarks).

Columns: ``income``, ``debt_ratio``, ``age``, ``credit_history_years``, ``open_accounts``
(numeric), ``sex``, ``age_band``, ``employment`` (categorical), ``default`` (the true label:
1 = the applicant defaulted), ``approved`` (the model's decision: 1 = loan granted... shown
as the *positive prediction* ``y_pred``) and ``p_approve`` (the model's score).

For fairness the positive outcome is approval: ``y = 1 - default`` is "would repay",
``y_pred = approved``. ``--bias X`` lowers the approval score of one group (``sex == F``)
by X, which is what a biased model looks like to the checks.

Usage::

    python bench/gen_credit.py --rows 20000 --bias 0.0 --out emea.parquet
    python bench/gen_credit.py --rows 20000 --bias 0.25 --seed 2 --out apac.csv

Run without ``--out`` (as ``make bench`` does) it writes a small file to a temp directory and
prints its summary, so it is harmless as a "benchmark".
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq


def generate(rows: int, *, bias: float = 0.0, seed: int = 0, shift: float = 0.0) -> pa.Table:
    """The table (see the module docstring); ``shift`` moves income and debt (drift)."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(np.array(["F", "M"]), rows, p=[0.48, 0.52])
    age = np.clip(rng.normal(41, 12, rows), 18, 85).round()
    age_band = np.where(age < 30, "18-29", np.where(age < 50, "30-49", "50+"))
    employment = rng.choice(
        np.array(["salaried", "self-employed", "unemployed"]), rows, p=[0.7, 0.22, 0.08]
    )
    income = np.exp(rng.normal(10.6 + shift, 0.5, rows)).round(-1)
    debt_ratio = np.clip(rng.beta(2, 5, rows) + shift * 0.1, 0, 1)
    # Credit history independent of age, so an unbiased model treats age bands alike.
    history = np.clip(rng.gamma(3, 4, rows), 0, None).round(1)
    accounts = rng.poisson(4, rows)
    # Scaled so most applicants are clearly good or bad risks: a sound model reaches ~0.92
    # accuracy and ~0.92 ROC AUC, as a production credit model would.
    logit = 5.0 * (
        -1.2
        + 2.8 * debt_ratio
        - 0.35 * (np.log(income) - 10.6)
        - 0.04 * history
        + 0.9 * (employment == "unemployed")
        + 0.2 * (employment == "self-employed")
    )
    p_default = 1 / (1 + np.exp(-logit))
    default = (rng.random(rows) < p_default).astype(np.int64)
    # The model sees a noisy version of the true risk; a biased model penalises group F.
    noisy = np.clip(p_default + rng.normal(0, 0.08, rows), 0, 1)
    p_approve = np.clip(1 - noisy - bias * (sex == "F"), 0, 1)
    approved = (p_approve >= 0.5).astype(np.int64)
    # Some applicants did not state their sex: kept as null, becomes the "missing" group.
    sex_col = pa.array(np.where(rng.random(rows) < 0.01, None, sex).tolist(), type=pa.string())
    return pa.table(
        {
            "income": income,
            "debt_ratio": debt_ratio.round(4),
            "age": age.astype(np.int64),
            "credit_history_years": history,
            "open_accounts": accounts,
            "sex": sex_col,
            "age_band": age_band,
            "employment": employment,
            "repaid": 1 - default,
            "approved": approved,
            "p_approve": p_approve.round(6),
        }
    )


def write(table: pa.Table, out: Path) -> None:
    """Write as CSV or Parquet by suffix."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        pacsv.write_csv(table, out)
    else:
        pq.write_table(table, out, row_group_size=262_144)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--bias", type=float, default=0.0)
    ap.add_argument("--shift", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--quick", action="store_true", help="accepted for make bench; no effect")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    table = generate(args.rows, bias=args.bias, seed=args.seed, shift=args.shift)
    if args.out is None:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "credit.parquet"
            write(table, out)
            print(
                f"generated {table.num_rows} rows in {time.perf_counter() - t0:.2f}s "
                f"({out.stat().st_size:,} bytes of Parquet); pass --out FILE to keep them"
            )
        return 0
    write(table, args.out)
    print(f"wrote {table.num_rows} rows to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
