"""A small governance world for end-to-end decision tests: keys, a trust root, the signed
standard bundle, a model release (artefact, manifest, model card) and approvals.

Deterministic: keys come from fixed seeds, the bundle and approvals are signed at ``NOW``.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from trust import dsse
from trust.approval import APPROVAL_PAYLOAD_TYPE, build_approval
from trust.keys import SigningKey
from trust.policy.bundle import sign_source
from trust.root import Role, RootMetadata
from trust.timeutil import format_time

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
NOW_TEXT = format_time(NOW)

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


def key(name: str) -> SigningKey:
    """A deterministic signing key for ``name``."""
    return SigningKey.from_seed(hashlib.sha256(b"world-" + name.encode()).digest())


ROOT_KEY, HUB = key("root"), key("hub")
OFFICERS = [key(f"officer{i}") for i in range(3)]
RISK, COMPLIANCE = key("risk"), key("compliance")


def write_root(path: Path) -> Path:
    """A trust root with a 2-of-3 policy role and the two production approver roles."""
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
    path.write_bytes(meta.envelope([ROOT_KEY]).to_json())
    return path


def write_standard_bundle(path: Path) -> Path:
    """``policies/standard`` signed by two of the three policy officers at ``NOW``."""
    path.write_bytes(sign_source(REPO / "policies" / "standard", OFFICERS[:2], now=NOW).to_json())
    return path


def write_approval(path: Path, signer: SigningKey, role: str, subject: str) -> Path:
    """A signed approval of ``subject`` (``name:version``) by ``signer`` in ``role``."""
    payload = build_approval(role=role, subject=subject, decision="approve", time=NOW_TEXT)
    path.write_bytes(dsse.sign(APPROVAL_PAYLOAD_TYPE, payload, [signer]).to_json())
    return path


def write_release(d: Path, *, name: str, version: str) -> dict[str, Path]:
    """A model artefact, its training data, a complete model card and a lineage manifest."""
    artefact = d / "model.bin"
    artefact.write_bytes(f"{name} {version}".encode())
    train = d / "train.csv"
    train.write_text("x,y\n1,0\n2,1\n")
    (d / "shap.json").write_text('{"method": "shap"}')
    card = d / "card.md"
    card.write_text(
        f"# {name} {version}\n" + "".join(f"## {s}\nDescribed.\n" for s in CARD_SECTIONS)
    )
    snapshot = (datetime.now(UTC) - timedelta(days=5)).date().isoformat()
    manifest = d / "manifest.yaml"
    model_sha = hashlib.sha256(artefact.read_bytes()).hexdigest()
    manifest.write_text(
        f"model: {{name: {name}, version: '{version}'}}\n"
        f"artifact: {{path: model.bin, sha256: '{model_sha}'}}\n"
        "code: {commit: 9f2c1e7}\n"
        "parameters: {max_depth: 6}\n"
        f"training_data: {{source: internal_db, path: train.csv, "
        f"sha256: '{hashlib.sha256(train.read_bytes()).hexdigest()}', snapshot_date: {snapshot}}}\n"
        f"trained_at: {snapshot}T09:00:00Z\n"
        "explainability: shap.json\n"
    )
    return {"manifest": manifest, "card": card}


def decide_argv(
    evidence: Path,
    *,
    root: Path,
    bundle: Path,
    model: str,
    version: str,
    stage: str,
    approvals: tuple[Path, ...] = (),
    extra: tuple[str, ...] = (),
) -> list[str]:
    """``warden agent decide`` with JSON output, as of ``NOW``."""
    argv = [
        "agent", "decide", "--evidence", str(evidence), "--bundle", str(bundle),
        "--root", str(root), "--model", model, "--version", version, "--stage", stage,
        "--now", NOW_TEXT, "--format", "json",
    ]  # fmt: skip
    for a in approvals:
        argv += ["--approval", str(a)]
    return argv + list(extra)


def write_validation_csv(path: Path, *, rows: int = 2000, seed: int = 7) -> Path:
    """A fair binary validation set: ``repaid`` (label), ``approved``, ``p_approve``, ``sex``."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], size=rows)
    repaid = (rng.random(rows) < 0.6).astype(int)
    score = np.clip(0.75 * repaid + 0.25 * rng.random(rows), 0, 1)
    lines = ["repaid,approved,p_approve,sex"]
    lines += [f"{r},{int(s > 0.5)},{s:.6f},{g}" for r, s, g in zip(repaid, score, sex, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def check_argv(data: Path, release: dict[str, Path], out: Path) -> list[str]:
    """``warden check run`` on a :func:`write_validation_csv` file, with lineage and card."""
    return [
        "check", "run", "--data", str(data), "--label", "repaid", "--pred", "approved",
        "--score", "p_approve", "--sensitive", "sex", "--manifest", str(release["manifest"]),
        "--model-card", str(release["card"]), "--out", str(out),
    ]  # fmt: skip
