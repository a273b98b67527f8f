"""Train small credit-risk models and publish them into an agent's directory registry.

For the agent daemon's end-to-end test, its benchmark and ``make demo``. Two kinds of model,
both a scikit-learn pipeline (scaler + logistic regression) saved as ``.skops`` (the safe
format: loading runs no code from the file):

* **compliant** (``--bias 0``): trained on the true outcome from income, debt, age, credit
  history, open accounts and employment; it never sees ``sex``, so its approvals do not
  depend on it (sex is independent of the other columns in :mod:`gen_credit`);
* **biased** (``--bias X``, e.g. 0.3): trained on *historically biased* labels — a share X
  of the women who repaid are labelled as defaulters — and given the ``female`` indicator as
  a feature, so it learns to approve fewer women. The standard policy's fairness rules deny it.

The data (:func:`credit_table`) is :func:`gen_credit.generate` reshaped for a model: numeric
indicator columns (``unemployed``, ``self_employed``, ``female``), an ``applicant_id`` that
is unique per row (a tell-tale: it must never leave the node), the ``sex`` column the
fairness checks group by, and the label ``repaid``; rows without a stated sex are dropped.

A release (:func:`write_release`) is a registry version directory, written as a publisher
writes it — model, training data, model card and lineage manifest first, ``READY`` last::

    REGISTRY/<name>/<version>/{model.skops, train.parquet, model_card.md, manifest.yaml, READY}

Usage::

    python bench/gen_credit_model.py data --rows 4000 --seed 11 --out node/validation.parquet
    python bench/gen_credit_model.py release --registry node/models --name credit-risk \\
        --version 1.0.0 [--bias 0.3] [--stage staging] [--seed 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_credit import generate  # noqa: E402

__all__ = ["FEATURES", "credit_table", "train_model", "write_release"]

FEATURES = ("income", "debt_ratio", "age", "credit_history_years", "open_accounts",
            "unemployed", "self_employed")
"""What a compliant model sees; a biased one sees ``female`` as well."""

CARD_SECTIONS = ("Model details", "Intended use", "Factors", "Metrics", "Evaluation data",
                 "Training data", "Quantitative analyses", "Ethical considerations",
                 "Caveats and recommendations")


def credit_table(rows: int, *, seed: int, shift: float = 0.0) -> pa.Table:
    """``rows`` applications (fewer: those without a stated sex are dropped); see the
    module docstring for the columns."""
    t = generate(rows, seed=seed, shift=shift)
    t = t.filter(pc.is_valid(t["sex"]))
    emp = t["employment"].to_numpy(zero_copy_only=False)
    sex = t["sex"].to_numpy(zero_copy_only=False)
    n = t.num_rows
    return pa.table({
        "applicant_id": [f"app-{seed:04d}-{i:07d}" for i in range(n)],
        **{c: t[c] for c in ("income", "debt_ratio", "age", "credit_history_years",
                             "open_accounts")},
        "unemployed": (emp == "unemployed").astype(np.int64),
        "self_employed": (emp == "self-employed").astype(np.int64),
        "female": (sex == "F").astype(np.int64),
        "sex": t["sex"],
        "age_band": t["age_band"],
        "employment": t["employment"],
        "repaid": t["repaid"],
    })


def _matrix(table: pa.Table, features: tuple[str, ...]) -> Any:
    return np.column_stack([table[c].to_numpy() for c in features]).astype(np.float64)


def train_model(
    table: pa.Table, *, bias: float = 0.0, seed: int = 0
) -> tuple[Any, tuple[str, ...]]:
    """A fitted pipeline and its feature columns (see the module docstring for ``bias``)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = table["repaid"].to_numpy().copy()
    features = FEATURES
    if bias > 0:
        female = table["female"].to_numpy() == 1
        flip = female & (y == 1) & (np.random.default_rng(seed).random(len(y)) < bias)
        y[flip] = 0
        features = (*FEATURES, "female")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(_matrix(table, features), y)
    return model, features


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_release(registry: Path, name: str, version: str, *, bias: float = 0.0,
                  seed: int = 3, stage: str = "staging", rows: int = 6000,
                  today: dt.date | None = None) -> Path:
    """Train a model (compliant when ``bias`` is 0) and write its version directory under
    ``registry``, ``READY`` last; return the directory."""
    import skops.io as sio

    d = registry / name / version
    d.mkdir(parents=True, exist_ok=False)
    train = credit_table(rows, seed=seed)
    pq.write_table(train, d / "train.parquet")
    model, features = train_model(train, bias=bias, seed=seed)
    sio.dump(model, d / "model.skops")
    (d / "model_card.md").write_text(
        f"# Model card: {name} {version}\n"
        + "".join(f"## {s}\nLogistic regression on {', '.join(features)}.\n"
                  for s in CARD_SECTIONS), encoding="utf-8")
    snapshot = (today or dt.date.today()) - dt.timedelta(days=5)
    (d / "manifest.yaml").write_text(
        f"model: {{name: {name}, version: '{version}', target_stage: {stage},\n"
        f"        framework: sklearn, features: [{', '.join(features)}]}}\n"
        f"artifact: {{path: model.skops, sha256: '{_sha256(d / 'model.skops')}'}}\n"
        "code: {commit: '9f2c1e7', repository: 'https://git.example/risk/credit-model'}\n"
        f"parameters: {{algorithm: logistic_regression, C: 1.0, label_bias: {bias}}}\n"
        f"training_data: {{source: internal_db, path: train.parquet, rows: {train.num_rows},\n"
        f"                sha256: '{_sha256(d / 'train.parquet')}', snapshot_date: {snapshot}}}\n"
        f"trained_at: {snapshot}T09:00:00Z\n", encoding="utf-8")
    (d / "READY").touch()  # last: the registry lists the version only from now on
    return d


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    data = sub.add_parser("data", help="write a validation set (CSV or Parquet by suffix)")
    data.add_argument("--rows", type=int, default=4000)
    data.add_argument("--seed", type=int, default=11)
    data.add_argument("--shift", type=float, default=0.0)
    data.add_argument("--out", type=Path, required=True)
    rel = sub.add_parser("release", help="train a model and publish it into a registry")
    rel.add_argument("--registry", type=Path, required=True)
    rel.add_argument("--name", default="credit-risk")
    rel.add_argument("--version", required=True)
    rel.add_argument("--bias", type=float, default=0.0,
                     help="share of repaying women labelled as defaulters in training")
    rel.add_argument("--seed", type=int, default=3)
    rel.add_argument("--stage", default="staging")
    args = ap.parse_args(argv)
    if args.cmd == "data":
        table = credit_table(args.rows, seed=args.seed, shift=args.shift)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if args.out.suffix == ".csv":
            import pyarrow.csv as pacsv

            pacsv.write_csv(table, args.out)
        else:
            pq.write_table(table, args.out)
        print(f"wrote {table.num_rows} rows to {args.out}", file=sys.stderr)
        return 0
    d = write_release(args.registry, args.name, args.version, bias=args.bias, seed=args.seed,
                      stage=args.stage)
    kind = "compliant" if args.bias == 0 else f"biased (label bias {args.bias})"
    print(f"published {args.name} {args.version} ({kind}) to {d}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
