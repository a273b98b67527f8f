"""A deterministic corpus of standard-bundle inputs, for comparing decisions across rewrites.

``corpus()`` perturbs :data:`PASSING_INPUT` (values around every threshold, deleted keys,
nulls and wrong types in non-metric fields, drifted columns, extra sensitive features, small
groups, approvals, stage, production monitoring, wrong schema). Inputs in ``corpus()`` keep
every *required metric* (performance metrics and per-feature fairness metrics) either a number
or deleted together with its whole section, so their decisions do not depend on the
missing-metric rules; ``missing_metric_corpus()`` covers those separately.

``tests/policy/data/decision_corpus.json`` holds the decisions of the library as H4 wrote it
(before the performance rewrite), keyed by the canonical SHA-256 of each input; regenerate it
only when a decision is meant to change (``python -m tests.policy._corpus --write``).
"""

from __future__ import annotations

import copy
import json
import random
import sys
from pathlib import Path
from typing import Any

from ._support import PASSING_INPUT

CORPUS_FILE = Path(__file__).resolve().parent / "data" / "decision_corpus.json"
SEED = 20261126
SIZE = 160

FAIRNESS_METRICS = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equal_opportunity_difference",
)


def _near(r: random.Random, threshold: float, spread: float) -> float:
    return round(threshold + (r.random() * 2 - 1) * spread, r.choice([2, 3, 4, 6, 12]))


def _feature(r: random.Random) -> dict[str, Any]:
    m = copy.deepcopy(PASSING_INPUT["evidence"]["fairness"]["sex"])
    m["demographic_parity_difference"] = _near(r, 0.05, 0.06)
    m["demographic_parity_ratio"] = _near(r, 0.8, 0.15)
    m["equalized_odds_difference"] = _near(r, 0.1, 0.08)
    m["equal_opportunity_difference"] = _near(r, 0.1, 0.08)
    ratio = _near(r, 0.8, 0.15)
    m["four_fifths"].update(ratio=ratio, passed=ratio >= 0.8)
    if r.random() < 0.15:
        m["four_fifths"]["passed"] = not m["four_fifths"]["passed"]  # inconsistent evidence
    m["groups"] = {
        f"g{i}": {
            "n": r.choice([5, 29, 30, 31, 400, 5000]),
            "selection_rate": r.random(),
            "tpr": r.random(),
            "fpr": r.random(),
        }
        for i in range(r.randint(1, 5))
    }
    return m


def _one(r: random.Random) -> dict[str, Any]:
    doc = copy.deepcopy(PASSING_INPUT)
    ev = doc["evidence"]
    for metric in list(ev["performance"]):
        ev["performance"][metric] = _near(r, 0.8, 0.2)
        if r.random() < 0.05:
            del ev["performance"][metric]
    features = r.sample(["sex", "race", "age_band", "region"], r.randint(0, 3))
    ev["fairness"] = {f: _feature(r) for f in features}
    cols = {
        f"c{i}": {
            "method": r.choice(["psi", "ks", "chi2", "wasserstein"]),
            "statistic": round(r.random() / 4, r.choice([2, 5, 12])),
            "threshold": 0.1,
            "drifted": r.random() < 0.15,
        }
        for i in range(r.randint(0, 12))
    }
    if r.random() < 0.8:
        cols["income"] = {
            "method": "psi",
            "statistic": 0.3,
            "threshold": 0.1,
            "drifted": r.random() < 0.3,
        }
    ev["drift"]["columns"] = cols
    ev["drift"]["share_drifted"] = _near(r, 0.3, 0.3)
    ev["drift"]["dataset_drift"] = r.random() < 0.3
    lin = ev["lineage"]
    lin["data_source"] = r.choice(["internal_db", "verified_vendor", "web", None, 7])
    lin["data_age_days"] = r.choice([0, 16, 30, 31, 400, 29.5, 30.0001])
    for key in ("data_sha256", "code_commit", "parameters"):
        roll = r.random()
        if roll < 0.08:
            del lin[key]
        elif roll < 0.12:
            lin[key] = r.choice([None, "", {}, []])
    lin["data_sha256_verified"] = r.choice([True, True, True, False, None])
    if r.random() < 0.05:
        del lin["data_age_days"]
    docs = ev["documentation"]
    docs["complete"] = r.random() < 0.8
    docs["missing_sections"] = (
        [] if docs["complete"] else ["limitations", "ethics"][: r.randint(1, 2)]
    )
    docs["explainability_present"] = r.random() < 0.8
    doc["model"]["n_features"] = r.choice([3, 10, 11, 24])
    doc["model"]["stage"] = r.choice(["staging", "production", "production", "canary"])
    doc["approvals"] = [a for a in doc["approvals"] if r.random() < 0.8]
    prod = doc["production"]
    prod["accuracy"] = _near(r, 0.85, 0.1)
    prod["hours_below_threshold"] = r.choice([0, 2, 24, 25, 100])
    prod["drift_alert"] = r.random() < 0.2
    for section in ("fairness", "drift", "lineage", "documentation", "performance"):
        if r.random() < 0.04:
            del ev[section]
    for top in ("production", "approvals"):
        if r.random() < 0.04:
            del doc[top]
    if r.random() < 0.03:
        doc["schema"] = "warden.policy-input/v0"
    return doc


def _mild(r: random.Random) -> dict[str, Any]:
    """The passing input with one section taken from a perturbed input (mostly allowed)."""
    doc = copy.deepcopy(PASSING_INPUT)
    other = _one(r)
    section = r.choice(["performance", "fairness", "drift", "lineage", "documentation", "top"])
    if section == "top":
        key = r.choice(["model", "approvals", "production"])
        if key in other:
            doc[key] = other[key]
    elif section in other["evidence"]:
        if section == "fairness":
            other["evidence"]["fairness"]["sex"] = _feature(r)
        doc["evidence"][section] = other["evidence"][section]
    return doc


def corpus() -> list[dict[str, Any]]:
    """``SIZE`` inputs, the same on every run: half heavily perturbed, half one section off."""
    r = random.Random(SEED)
    rest = [_one(r) if i % 2 else _mild(r) for i in range(SIZE - 1)]
    return [copy.deepcopy(PASSING_INPUT), *rest]


def missing_metric_corpus() -> list[tuple[dict[str, Any], str, str]]:
    """(input, feature, metric) with one fairness metric null or absent, else passing."""
    r = random.Random(SEED + 1)
    out = []
    for metric in (*FAIRNESS_METRICS, "four_fifths.passed"):
        for how in ("null", "absent"):
            doc = copy.deepcopy(PASSING_INPUT)
            feature = "sex"
            if r.random() < 0.5:
                feature = "race"
                doc["evidence"]["fairness"]["race"] = copy.deepcopy(
                    doc["evidence"]["fairness"]["sex"]
                )
            target = doc["evidence"]["fairness"][feature]
            *parents, leaf = metric.split(".")
            for p in parents:
                target = target[p]
            if how == "null":
                target[leaf] = None
            else:
                del target[leaf]
            out.append((doc, feature, metric))
    return out


def decisions(engine: Any, inputs: list[dict[str, Any]]) -> dict[str, Any]:
    """{input sha256: {allow, violations, warnings}} for ``inputs``."""
    result = {}
    for doc in inputs:
        d = engine.evaluate(doc)
        result[d.input_sha256] = {
            "allow": d.allow,
            "violations": [v.to_dict() for v in d.violations],
            "warnings": list(d.warnings),
        }
    return result


if __name__ == "__main__":  # pragma: no cover - maintenance entry point
    from trust.policy.engine import PolicyEngine

    from ._support import POLICIES, verified_bundle

    if "--write" not in sys.argv:
        sys.exit("usage: python -m tests.policy._corpus --write  (overwrites the golden file)")
    engine = PolicyEngine(verified_bundle(POLICIES / "standard", now=None))
    CORPUS_FILE.parent.mkdir(exist_ok=True)
    CORPUS_FILE.write_text(json.dumps(decisions(engine, corpus()), indent=0, sort_keys=True) + "\n")
    print(f"wrote {CORPUS_FILE}")
