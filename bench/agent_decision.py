"""The agent's real policy decision: the demo's evidence, the standard bundle, with and without
its input projection.

The input is built the way ``warden agent decide`` builds it in the demo (deploy/demo/30 and
35): ``run_checks`` on a synthetic credit-risk validation set (``bench/gen_credit.py``) with
fairness by sex and age band (and their intersection), drift against a reference set of the
same shape, lineage from a release manifest, a model card; then ``build_policy_input`` with the
two production approvals verified against a trust root. Both bundles are the shipped
``policies/standard`` signed 2-of-3 and verified; the peer is the same bundle with its
``input_projection`` removed (what every decision cost before it). Each side is a persistent
:class:`~trust.policy.engine.PolicyEngine` (one warm worker process), timed over the full
``engine.evaluate`` an agent pays: canonical JSON and SHA-256 of the whole input (done while
the worker evaluates), the projection, the worker round trip, reading the result. Wall-clock
medians are what a caller waits; "CPU ms" is the mean CPU time per decision of the caller and
its worker together, a figure that other load on the machine disturbs much less. The two
decisions are checked equal (allow, violations, warnings, input hash) with explicit raises
before any time is printed.

    .venv/bin/python bench/agent_decision.py           # 2000 decisions per side
    .venv/bin/python bench/agent_decision.py --quick   # 200

Goal: median decision ≤ 5 ms with the projection.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# The repository before bench/, where bench/agent.py would shadow the ``agent`` package.
sys.path.insert(0, str(REPO))
sys.path.append(str(REPO / "bench"))

from agent.checks.run import CheckSpec, run_checks  # noqa: E402
from agent.policy_input import ModelInfo, build_policy_input  # noqa: E402
from tests.agent._world import NOW, OFFICERS, write_approval, write_root  # noqa: E402
from tests.agent._world import key as world_key  # noqa: E402
from trust.approval import Approval  # noqa: E402
from trust.canonical import canonical_json  # noqa: E402
from trust.policy.bundle import PolicyBundle, sign_source  # noqa: E402
from trust.policy.decision import Decision  # noqa: E402
from trust.policy.engine import PolicyEngine  # noqa: E402
from trust.root import TrustRoot  # noqa: E402

GOAL_MS = 5.0
ROWS = 50_000
DRIFT_COLUMNS = ("income", "debt_ratio", "age", "credit_history_years", "employment")
_CARD_SECTIONS = (
    "Model details",
    "Intended use",
    "Factors",
    "Metrics",
    "Evaluation data",
    "Training data",
    "Quantitative analyses",
    "Ethical considerations",
    "Caveats and recommendations",
)


class Mismatch(RuntimeError):
    """The projected decision differs from the unprojected one: the timing means nothing."""


def _release(d: Path) -> tuple[Path, Path, str]:
    """The demo's release: artefact, training data, manifest and model card (as of NOW)."""
    import gen_credit

    artefact = d / "credit-risk-1.4.0.bin"
    artefact.write_bytes(b"credit-risk model 1.4.0 (demo artefact)\n")
    train = d / "train.parquet"
    gen_credit.write(gen_credit.generate(5000, seed=3), train)
    model_sha = hashlib.sha256(artefact.read_bytes()).hexdigest()
    train_sha = hashlib.sha256(train.read_bytes()).hexdigest()
    snapshot = (NOW - timedelta(days=12)).date().isoformat()
    trained = (NOW - timedelta(days=9)).date().isoformat()
    (d / "shap_summary.json").write_text('{"method": "shap", "top_features": ["income"]}')
    manifest = d / "manifest.yaml"
    manifest.write_text(
        "model: {name: credit-risk, version: '1.4.0'}\n"
        f"artifact: {{path: {artefact.name}, sha256: '{model_sha}'}}\n"
        "code: {commit: '9f2c1e7', repository: 'https://git.example/risk/credit-model'}\n"
        "parameters: {algorithm: gradient_boosting, max_depth: 6, learning_rate: 0.05}\n"
        f"training_data: {{source: internal_db, path: train.parquet, sha256: '{train_sha}', "
        f"rows: 5000, snapshot_date: {snapshot}}}\n"
        f"trained_at: {trained}T09:00:00Z\n"
        "explainability: shap_summary.json\n"
    )
    card = d / "model_card.md"
    card.write_text(
        "# Model card: credit-risk 1.4.0\n"
        + "".join(f"## {s}\nDescribed for the benchmark.\n" for s in _CARD_SECTIONS)
    )
    return manifest, card, model_sha


def demo_input(d: Path, *, rows: int = ROWS) -> tuple[dict[str, Any], TrustRoot]:
    """The policy input of the demo's EMEA production decision, and the trust root."""
    import gen_credit

    data, reference = d / "emea.parquet", d / "reference.parquet"
    gen_credit.write(gen_credit.generate(rows, seed=11), data)
    gen_credit.write(gen_credit.generate(rows, seed=13), reference)
    manifest, card, model_sha = _release(d)
    evidence = run_checks(
        CheckSpec(
            data=data,
            label="repaid",
            pred="approved",
            score=("p_approve",),
            sensitive=("sex", "age_band"),
            min_group_size=100,
            reference=reference,
            drift_columns=DRIFT_COLUMNS,
            manifest=manifest,
            model_card=card,
            now=NOW,
        )
    )
    root_path = write_root(d / "root.json")
    root = TrustRoot.from_envelope(root_path.read_bytes(), now=NOW)
    subject = "credit-risk:1.4.0"
    approvals = [
        Approval.from_envelope(
            write_approval(d / f"{role}.approval", world_key(name), role, subject).read_bytes(),
            root,
        )
        for role, name in (("risk_officer", "risk"), ("compliance", "compliance"))
    ]
    model = ModelInfo("credit-risk", "1.4.0", "production", n_features=5, artifact_sha256=model_sha)
    return build_policy_input(evidence, model, now=NOW, approvals=approvals), root


def _strip_projection(src: Path) -> None:
    """Delete the ``input_projection:`` block (the key and its list items) from bundle.yaml."""
    lines = src.read_text().splitlines(keepends=True)
    out, skipping = [], False
    for line in lines:
        if line.startswith("input_projection:"):
            skipping = True
            continue
        if skipping and line.startswith("  - "):
            continue
        skipping = False
        out.append(line)
    src.write_text("".join(out))


def bundles(d: Path, root: TrustRoot) -> tuple[PolicyBundle, PolicyBundle]:
    """(the standard bundle as shipped, the same without its projection), signed and verified."""
    plain = d / "unprojected"
    shutil.copytree(REPO / "policies" / "standard", plain / "standard")
    shutil.copytree(REPO / "policies" / "lib", plain / "lib")
    _strip_projection(plain / "standard" / "bundle.yaml")

    def signed(directory: Path) -> PolicyBundle:
        env = sign_source(directory, OFFICERS[:2], now=NOW)
        return PolicyBundle.from_envelope(env.to_json(), root, now=NOW)

    projected, unprojected = signed(REPO / "policies" / "standard"), signed(plain / "standard")
    if projected.manifest.input_projection is None:
        raise Mismatch("policies/standard/bundle.yaml declares no input_projection")
    if unprojected.manifest.input_projection is not None:
        raise Mismatch("could not remove input_projection from the copy")
    return projected, unprojected


def _nodes(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + sum(_nodes(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(_nodes(v) for v in value)
    return 1


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of process ``pid`` so far (0 when unknown)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _times(fn: Callable[[], object], runs: int, *, worker: int | None = None) -> dict[str, float]:
    """Median and p99 wall time of ``fn``; with ``worker``, also the mean CPU time per call of
    this process and that worker together (less sensitive to other load than wall time)."""
    for _ in range(min(20, runs)):  # warm up
        fn()
    samples = []
    cpu0, wcpu0 = time.process_time(), _cpu_seconds(worker)
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    cpu = time.process_time() - cpu0 + _cpu_seconds(worker) - wcpu0
    samples.sort()
    out = {
        "median_ms": statistics.median(samples) * 1000.0,
        "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1000.0,
    }
    if worker is not None:
        out["cpu_ms"] = cpu / runs * 1000.0
    return out


def _same(a: Decision, b: Decision) -> None:
    for name in ("allow", "violations", "warnings", "input_sha256"):
        if getattr(a, name) != getattr(b, name):
            raise Mismatch(f"{name}: projected {getattr(a, name)!r} != {getattr(b, name)!r}")


def measure_decision(runs: int, *, rows: int = ROWS) -> dict[str, Any]:
    """Time ``runs`` decisions on the demo input with and without the projection.

    Returns ``{"runs", "allow", "input_nodes", "projected_nodes", "input_bytes",
    "projected_bytes", "projected": {median_ms, p99_ms, cpu_ms}, "unprojected": {…}, "ratio",
    "parts": {"canonical_full_ms", "project_and_encode_ms", "worker_ms"}, "goal_ms", "met"}``;
    raises :class:`Mismatch` if the two decisions differ.
    """
    with tempfile.TemporaryDirectory(prefix="warden-bench-decision-") as tmp:
        d = Path(tmp)
        doc, root = demo_input(d, rows=rows)
        projected_bundle, plain_bundle = bundles(d, root)
    with PolicyEngine(projected_bundle) as fast, PolicyEngine(plain_bundle) as slow:
        a, b = fast.evaluate(doc), slow.evaluate(doc)
        _same(a, b)
        if a.projection is None or a.projected_sha256 is None:
            raise Mismatch("the projected engine did not record its projection")
        assert fast.projection is not None
        view = fast.projection.apply(doc)
        seen = canonical_json(view).decode("utf-8")
        entry = projected_bundle.manifest.rego_entrypoint
        result: dict[str, Any] = {
            "runs": runs,
            "allow": a.allow,
            "input_nodes": _nodes(doc),
            "projected_nodes": _nodes(view),
            "input_bytes": len(canonical_json(doc)),
            "projected_bytes": len(seen),
            "projected": _times(lambda: fast.evaluate(doc), runs, worker=fast.worker_pid),
            "unprojected": _times(lambda: slow.evaluate(doc), runs, worker=slow.worker_pid),
            "parts": {
                "canonical_full_ms": _times(lambda: canonical_json(doc), runs)["median_ms"],
                "project_and_encode_ms": _times(
                    lambda: canonical_json(fast.projection.apply(doc)),  # type: ignore[union-attr]
                    runs,
                )["median_ms"],
                "worker_ms": _times(lambda: fast._worker.entrypoint(entry, seen), runs)[
                    "median_ms"
                ],
            },
        }
    result["ratio"] = result["unprojected"]["median_ms"] / result["projected"]["median_ms"]
    result["goal_ms"] = GOAL_MS
    result["met"] = result["projected"]["median_ms"] <= GOAL_MS
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200 decisions per side (CI smoke)")
    ap.add_argument("--runs", type=int, help="decisions per side (default 2000, 200 quick)")
    args = ap.parse_args()
    runs = args.runs or (200 if args.quick else 2000)
    r = measure_decision(runs)
    print(f"agent decision benchmark: demo input, standard bundle, {runs} decisions per side")
    print(
        f"  input: {r['input_nodes']} JSON nodes ({r['input_bytes']} bytes); projected: "
        f"{r['projected_nodes']} nodes ({r['projected_bytes']} bytes); allow={r['allow']}, "
        "same decision both ways"
    )
    print(f"{'':<24}{'median ms':>10}{'p99 ms':>10}{'CPU ms':>10}")
    for name in ("unprojected", "projected"):
        t = r[name]
        print(f"  {name:<22}{t['median_ms']:>10.3f}{t['p99_ms']:>10.3f}{t['cpu_ms']:>10.3f}")
    p = r["parts"]
    print(
        f"  projected parts (medians): canonical JSON + hash of the whole input "
        f"{p['canonical_full_ms']:.3f} ms, project + encode {p['project_and_encode_ms']:.3f} ms, "
        f"worker round trip {p['worker_ms']:.3f} ms"
    )
    print(f"  ratio unprojected / projected: {r['ratio']:.2f}x")
    verdict = "met" if r["met"] else "MISSED"
    print(
        f"goal: median decision ≤ {GOAL_MS:g} ms — {r['projected']['median_ms']:.3f} ms: {verdict}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
