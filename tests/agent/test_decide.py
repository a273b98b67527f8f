"""`warden agent decide` and the policy input: evidence from a real check run, a signed
standard bundle, approvals verified against the root, and every way it must refuse."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.policy_input import ModelInfo, ProductionStatus, build_policy_input
from trust import dsse
from trust.approval import APPROVAL_PAYLOAD_TYPE, Approval, build_approval
from trust.cli.main import main
from trust.errors import FormatError
from trust.keys import SigningKey, save_private
from trust.policy.bundle import sign_source
from trust.root import Role, RootMetadata, TrustRoot
from trust.timeutil import format_time

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
NOW_TEXT = format_time(NOW)


def _key(name: str) -> SigningKey:
    return SigningKey.from_seed(hashlib.sha256(b"decide-test-" + name.encode()).digest())


ROOT_KEY, HUB = _key("root"), _key("hub")
OFFICERS = [_key(f"officer{i}") for i in range(3)]
RISK, COMPLIANCE, OUTSIDER = _key("risk"), _key("compliance"), _key("outsider")


def _root_envelope() -> dsse.Envelope:
    everyone = [ROOT_KEY, HUB, *OFFICERS, RISK, COMPLIANCE]
    meta = RootMetadata(
        version=1,
        expires=NOW + timedelta(days=365),
        keys={k.key_id: k.public for k in everyone},
        roles={
            "root": Role((ROOT_KEY.key_id,), 1),
            "policy": Role(tuple(k.key_id for k in OFFICERS), 2),
            "hub": Role((HUB.key_id,), 1),
            "approver:risk_officer": Role((RISK.key_id,), 1),
            "approver:compliance": Role((COMPLIANCE.key_id,), 1),
        },
    )
    return meta.envelope([ROOT_KEY])


def _approval(
    tmp: Path, name: str, key: SigningKey, role: str, subject: str, decision: str = "approve"
) -> Path:
    payload = build_approval(role=role, subject=subject, decision=decision, time=NOW_TEXT)
    path = tmp / name
    path.write_bytes(dsse.sign(APPROVAL_PAYLOAD_TYPE, payload, [key]).to_json())
    return path


def _validation_csv(path: Path, *, bias: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 4000
    sex = rng.choice(["F", "M"], size=n)
    repaid = (rng.random(n) < 0.6).astype(int)
    score = np.clip(0.75 * repaid + 0.25 * rng.random(n) - bias * (sex == "F"), 0, 1)
    approved = (score > 0.5).astype(int)
    rows = ["repaid,approved,p_approve,sex"]
    rows += [
        f"{r},{a},{s:.6f},{g}" for r, a, s, g in zip(repaid, approved, score, sex, strict=True)
    ]
    path.write_text("\n".join(rows) + "\n")


CARD_SECTIONS = (
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


def _model_files(tmp: Path) -> None:
    """A model artefact, its training data, a complete model card and a manifest."""
    (tmp / "model.bin").write_bytes(b"credit model 7")
    _validation_csv(tmp / "train.csv", bias=0.0, seed=3)
    (tmp / "shap.json").write_text('{"method": "shap"}')
    (tmp / "card.md").write_text(
        "# credit 7\n" + "".join(f"## {s}\nDescribed for the test.\n" for s in CARD_SECTIONS)
    )
    digest = hashlib.sha256((tmp / "train.csv").read_bytes()).hexdigest()
    model_digest = hashlib.sha256(b"credit model 7").hexdigest()
    snapshot = (datetime.now(UTC) - timedelta(days=5)).date().isoformat()
    (tmp / "manifest.yaml").write_text(
        "model: {name: credit, version: '7'}\n"
        f"artifact: {{path: model.bin, sha256: '{model_digest}'}}\n"
        "code: {commit: 9f2c1e7}\n"
        "parameters: {max_depth: 6}\n"
        f"training_data: {{source: internal_db, path: train.csv, sha256: '{digest}', "
        f"snapshot_date: {snapshot}}}\n"
        f"trained_at: {snapshot}T09:00:00Z\n"
        "explainability: shap.json\n"
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("decide")
    (tmp / "root.json").write_bytes(_root_envelope().to_json())
    bundle = sign_source(REPO / "policies" / "standard", OFFICERS[:2], now=NOW)
    (tmp / "standard.bundle").write_bytes(bundle.to_json())
    out: dict[str, Path] = {
        "dir": tmp,
        "root": tmp / "root.json",
        "bundle": tmp / "standard.bundle",
    }
    _model_files(tmp)
    for region, bias in (("fair", 0.0), ("biased", 0.4)):
        data = tmp / f"{region}.csv"
        _validation_csv(data, bias=bias, seed=7)
        evidence = tmp / f"{region}.json"
        code = main(
            [
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
                "sex",
                "--manifest",
                str(tmp / "manifest.yaml"),
                "--model-card",
                str(tmp / "card.md"),
                "--out",
                str(evidence),
            ]
        )
        assert code == 0
        out[region] = evidence
    out["risk_ok"] = _approval(tmp, "risk.approval", RISK, "risk_officer", "credit:7")
    out["compliance_ok"] = _approval(
        tmp, "compliance.approval", COMPLIANCE, "compliance", "credit:7"
    )
    out["risk_other"] = _approval(tmp, "risk-v6.approval", RISK, "risk_officer", "credit:6")
    out["forged"] = _approval(tmp, "forged.approval", OUTSIDER, "risk_officer", "credit:7")
    return out


def _decide(
    world: dict[str, Path], evidence: str, *extra: str, stage: str = "staging"
) -> list[str]:
    return [
        "agent",
        "decide",
        "--evidence",
        str(world[evidence]),
        "--bundle",
        str(world["bundle"]),
        "--root",
        str(world["root"]),
        "--model",
        "credit",
        "--version",
        "7",
        "--stage",
        stage,
        "--now",
        NOW_TEXT,
        "--format",
        "json",
        *extra,
    ]


def _run(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, Any] | None, str]:
    code = main(args)
    captured = capsys.readouterr()
    decision = json.loads(captured.out) if captured.out.strip().startswith("{") else None
    return code, decision, captured.err


def _rules(decision: dict[str, Any] | None) -> set[str]:
    assert decision is not None
    return {v["rule"] for v in decision["violations"]}


def test_fair_model_to_staging_is_allowed(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, decision, err = _run(_decide(world, "fair"), capsys)
    assert (code, err) == (0, "")
    assert decision is not None and decision["allow"] is True
    assert decision["bundle"]["name"] == "standard"


def test_biased_model_is_denied_for_fairness(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, decision, _ = _run(_decide(world, "biased"), capsys)
    assert code == 1
    assert decision is not None and decision["allow"] is False
    assert "fairness.demographic_parity_difference" in _rules(decision)


def test_production_needs_both_approvals(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, decision, _ = _run(_decide(world, "fair", stage="production"), capsys)
    assert code == 1
    assert any(r.startswith("approvals.") for r in _rules(decision))

    both = ["--approval", str(world["risk_ok"]), "--approval", str(world["compliance_ok"])]
    code, decision, _ = _run(_decide(world, "fair", *both, stage="production"), capsys)
    assert code == 0, decision


def test_approval_of_another_version_does_not_count(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--approval", str(world["risk_other"]), "--approval", str(world["compliance_ok"])]
    code, decision, _ = _run(_decide(world, "fair", *args, stage="production"), capsys)
    assert code == 1
    assert any(r.startswith("approvals.") for r in _rules(decision))


def test_approval_by_a_key_outside_the_role_is_refused(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, decision, err = _run(_decide(world, "fair", "--approval", str(world["forged"])), capsys)
    assert code == 2 and decision is None
    assert err.startswith("error:") and "forged.approval" in err


def test_tampered_bundle_never_decides(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    env = json.loads(world["bundle"].read_bytes())
    env["signatures"] = env["signatures"][:1]  # below the 2-of-3 policy threshold
    bad = tmp_path / "one-signature.bundle"
    bad.write_text(json.dumps(env))
    args = _decide(world, "fair")
    args[args.index("--bundle") + 1] = str(bad)
    code, decision, err = _run(args, capsys)
    assert code == 2 and decision is None and "required" in err


def test_replayed_bundle_is_refused(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, decision, err = _run(_decide(world, "fair", "--last-version", "2"), capsys)
    assert code == 2 and decision is None and "older than the last accepted version 2" in err


def test_evidence_that_breaks_the_schema_is_named(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    doc = json.loads(world["fair"].read_text())
    doc["performance"]["accuracy"] = "high"
    bad = tmp_path / "bad-evidence.json"
    bad.write_text(json.dumps(doc))
    args = _decide(world, "fair")
    args[args.index("--evidence") + 1] = str(bad)
    code, decision, err = _run(args, capsys)
    assert code == 2 and decision is None
    assert "accuracy" in err and len(err.strip().splitlines()) <= 2


def test_unknown_production_key_is_named(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    prod = tmp_path / "production.json"
    prod.write_text(json.dumps({"accuracy": 0.9, "acuracy_typo": 1}))
    code, _, err = _run(_decide(world, "fair", "--production", str(prod)), capsys)
    assert code == 2 and "acuracy_typo" in err and str(prod) in err


def test_rollback_from_production_status(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    prod = tmp_path / "production.json"
    prod.write_text(
        json.dumps({"accuracy": 0.70, "hours_below_threshold": 30, "deployment_age_hours": 100})
    )
    code, decision, _ = _run(_decide(world, "fair", "--production", str(prod)), capsys)
    assert code == 1
    assert any(r.startswith("rollback.") for r in _rules(decision))


def test_policy_input_keeps_only_verified_approvals_of_this_version(world: dict[str, Path]) -> None:
    root = TrustRoot.load(world["root"], now=NOW)
    approvals = [
        Approval.from_envelope(world[name].read_bytes(), root)
        for name in ("risk_ok", "risk_other", "compliance_ok")
    ]
    evidence = json.loads(world["fair"].read_text())
    doc = build_policy_input(
        evidence,
        ModelInfo("credit", "7", "production"),
        now=NOW,
        approvals=approvals,
        production=ProductionStatus(accuracy=0.9),
    )
    assert doc["schema"] == "warden.policy-input/v1"
    assert doc["model"] == {"name": "credit", "version": "7", "stage": "production"}
    assert doc["approvals"] == [
        {"role": "risk_officer", "key_id": RISK.key_id, "time": NOW_TEXT},
        {"role": "compliance", "key_id": COMPLIANCE.key_id, "time": NOW_TEXT},
    ]
    assert doc["production"] == {"accuracy": 0.9}
    assert doc["evidence"] == evidence and doc["now"] == NOW_TEXT


def test_rejection_is_not_an_approval(world: dict[str, Path]) -> None:
    root = TrustRoot.load(world["root"], now=NOW)
    path = _approval(world["dir"], "reject.approval", RISK, "risk_officer", "credit:7", "reject")
    reject = Approval.from_envelope(path.read_bytes(), root)
    doc = build_policy_input(
        {},
        ModelInfo("credit", "7", "production"),
        now=NOW,
        approvals=[reject],
        allow_unnamed_evidence=True,  # empty evidence names no model (issue 8, item 2)
    )
    assert doc["approvals"] == []


@pytest.mark.parametrize(
    "production",
    [{"accuracy": "0.9"}, {"drift_alert": "yes"}, {"hours_below_threshold": True}, {"x": 1}],
)
def test_production_status_is_typed(production: dict[str, Any]) -> None:
    with pytest.raises(FormatError):
        ProductionStatus.from_dict(production, what="production.json")


def test_approval_cli_round_trip(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    key_file = tmp_path / "risk.key"
    save_private(RISK, key_file)
    out = tmp_path / "cli.approval"
    assert (
        main(
            [
                "approval",
                "create",
                "--role",
                "risk_officer",
                "--subject",
                "credit:7",
                "--key",
                str(key_file),
                "--time",
                NOW_TEXT,
                "--out",
                str(out),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["approval", "verify", str(out), "--root", str(world["root"])]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["signers"] == [RISK.key_id] and shown["subject"] == "credit:7"


def test_written_policy_input_matches_the_published_schema(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import jsonschema
    import referencing
    from referencing.jsonschema import DRAFT202012

    from agent.checks.evidence import evidence_schema

    written = tmp_path / "input.json"
    args = ["--approval", str(world["risk_ok"]), "--input-out", str(written)]
    _run(_decide(world, "fair", *args, stage="production"), capsys)
    schema = json.loads((REPO / "policies" / "input.schema.json").read_text())
    registry = referencing.Registry().with_resources(
        (s["$id"], DRAFT202012.create_resource(s)) for s in (evidence_schema(), schema)
    )
    doc = json.loads(written.read_text())
    jsonschema.Draft202012Validator(schema, registry=registry).validate(doc)
    assert doc["approvals"][0]["role"] == "risk_officer"
