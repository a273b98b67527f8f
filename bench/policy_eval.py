"""Policy evaluation speed: the standard bundle and the seed's examples on realistic inputs.

Measures compile time (once per bundle) and the full per-decision cost that an agent pays —
input canonicalisation and hashing, the compiled Rego plan, reading the result by convention,
building the Decision — as median and p99 latency and decisions per second. The peer is the
raw regopy call on the same compiled plan (what Warden adds on top of the engine is the
ratio). Goal: median decision < 2 ms.

    .venv/bin/python bench/policy_eval.py [--quick]
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from regopy import rego_shared as rs  # noqa: E402

from trust.policy.engine import PolicyEngine  # noqa: E402

sys.path.insert(0, str(REPO / "tests"))
from policy._support import PASSING_INPUT, verified_bundle  # noqa: E402

SEED_INPUTS = {
    "model_governance": lambda r: {"model": {"accuracy": r.random(), "bias": r.random() / 5}},
    "regulatory": lambda r: {
        "model": {"explainability_provided": r.random() > 0.2, "bias_test_passed": r.random() > 0.2}
    },
    "model.governance": lambda r: {"fairness_metrics": {"demographic_parity_diff": r.random() / 4}},
    "model_registry": lambda r: {
        "accuracy": r.random(),
        "bias": r.random() / 10,
        "model_type": "classification",
    },
    "data_lineage": lambda r: {
        "data_source": r.choice(["internal_db", "verified_vendor", "web"]),
        "retention_days": r.randint(1, 500),
    },
    "rollback": lambda r: {
        "model": {"accuracy": r.random()},
        "deployment_age_hours": r.randint(0, 72),
    },
}


def standard_input(r: random.Random) -> dict:
    """A realistic input: 3 sensitive features with 2-5 groups, 30 drift columns."""
    doc = copy.deepcopy(PASSING_INPUT)
    ev = doc["evidence"]
    for k in ev["performance"]:
        ev["performance"][k] = round(0.7 + r.random() * 0.3, 4)
    fairness = {}
    for feature in ["sex", "race", "age_band"]:
        m = copy.deepcopy(PASSING_INPUT["evidence"]["fairness"]["sex"])
        m["demographic_parity_difference"] = round(r.random() * 0.1, 4)
        m["groups"] = {
            f"g{i}": {
                "n": r.randint(20, 5000),
                "selection_rate": r.random(),
                "tpr": r.random(),
                "fpr": r.random(),
            }
            for i in range(r.randint(2, 5))
        }
        fairness[feature] = m
    ev["fairness"] = fairness
    cols = {
        f"c{i}": {
            "method": "psi",
            "statistic": r.random() / 5,
            "threshold": 0.1,
            "drifted": r.random() < 0.1,
        }
        for i in range(30)
    }
    cols["income"] = {"method": "psi", "statistic": 0.01, "threshold": 0.1, "drifted": False}
    ev["drift"]["columns"] = cols
    ev["drift"]["share_drifted"] = round(sum(c["drifted"] for c in cols.values()) / len(cols), 4)
    return doc


def measure(fn, inputs):
    times = []
    for doc in inputs:
        t = time.perf_counter()
        fn(doc)
        times.append(time.perf_counter() - t)
    times.sort()
    med = statistics.median(times) * 1000
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))] * 1000
    return med, p99, len(times) / sum(times)


def raw_regopy(engine: PolicyEngine):
    ep = engine.bundle.manifest.rego_entrypoint

    def call(doc):
        engine._runner.set_input_term(json.dumps(doc))
        out = rs.rego_bundle_query_entrypoint(engine._runner._impl, engine._plan._impl, ep)
        json.loads(rs.rego_output_string(out))
        rs.rego_free_output(out)

    return call


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small run (CI smoke)")
    args = ap.parse_args()
    n = 200 if args.quick else 3000
    r = random.Random(7)
    print(f"policy evaluation benchmark ({n} decisions per bundle)")
    print(
        f"{'bundle':<22}{'compile ms':>11}{'median ms':>11}{'p99 ms':>9}{'dec/s':>9}"
        f"{'regopy ms':>11}{'ratio':>7}  allowed"
    )
    rows = [("standard", REPO / "policies/standard", [standard_input(r) for _ in range(n)])]
    for name, gen in SEED_INPUTS.items():
        rows.append((name, REPO / "policies/examples" / name, [gen(r) for _ in range(n)]))
    rows.append(
        ("federated", REPO / "policies/examples/federated", [standard_input(r) for _ in range(n)])
    )
    worst = 0.0
    for name, path, inputs in rows:
        bundle = verified_bundle(path, now=None)  # the engine evaluates verified bundles only
        t = time.perf_counter()
        engine = PolicyEngine(bundle)
        compile_ms = (time.perf_counter() - t) * 1000
        for doc in inputs[:20]:  # warm up
            engine.evaluate(doc)
        allowed = sum(engine.evaluate(doc).allow for doc in inputs)
        med, p99, rate = measure(engine.evaluate, inputs)
        raw_med, _, _ = measure(raw_regopy(engine), inputs)
        worst = max(worst, med)
        print(
            f"{name:<22}{compile_ms:>11.1f}{med:>11.3f}{p99:>9.3f}{rate:>9.0f}"
            f"{raw_med:>11.3f}{med / raw_med:>7.2f}  {allowed}/{len(inputs)}"
        )
    verdict = "met" if worst < 2.0 else "MISSED"
    print(f"goal: median decision < 2 ms — worst median {worst:.3f} ms: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
