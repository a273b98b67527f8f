"""Shared helpers for policy tests: deterministic officers, a root builder, model inputs."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from trust.keys import SigningKey
from trust.policy.bundle import PolicyBundle, sign_source
from trust.root import Role, RootMetadata, TrustRoot

REPO = Path(__file__).resolve().parents[2]
POLICIES = REPO / "policies"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def officer(n: int) -> SigningKey:
    """A deterministic ed25519 key (seed derived from ``n``)."""
    return SigningKey.from_seed(hashlib.sha256(b"warden-policy-test-%d" % n).digest())


def make_root(officers: list[SigningKey], root_key: SigningKey, *, threshold: int = 2) -> TrustRoot:
    """A root whose policy role is the officers with ``threshold``."""
    hub = officer(200)
    keys = {k.key_id: k.public for k in [*officers, root_key, hub]}
    meta = RootMetadata(
        version=1,
        expires=NOW + timedelta(days=365),
        keys=keys,
        roles={
            "root": Role((root_key.key_id,), 1),
            "policy": Role(tuple(k.key_id for k in officers), threshold),
            "hub": Role((hub.key_id,), 1),
        },
    )
    return TrustRoot.from_envelope(meta.envelope([root_key]).to_json(), now=NOW)


_OFFICERS = [officer(i) for i in range(3)]
_ROOT: list[TrustRoot] = []


def verified_bundle(directory: str | Path, *, now: datetime | None = NOW) -> PolicyBundle:
    """The bundle of a source ``directory``, signed by two of the test officers and verified
    against their root: the engine evaluates only verified bundles, so engine tests build
    theirs the way an agent does. ``now`` is both the signing and the verification time."""
    if not _ROOT:
        _ROOT.append(make_root(_OFFICERS, officer(100)))
    envelope = sign_source(directory, _OFFICERS[:2], now=now)
    return PolicyBundle.from_envelope(envelope.to_json(), _ROOT[0], now=now)


PASSING_INPUT: dict[str, Any] = {
    "schema": "warden.policy-input/v1",
    "model": {
        "name": "credit-risk",
        "version": "7",
        "stage": "production",
        "n_features": 24,
        "artifact_sha256": "a" * 64,
    },
    "evidence": {
        "performance": {
            "accuracy": 0.91,
            "precision": 0.88,
            "recall": 0.84,
            "f1": 0.86,
            "roc_auc": 0.93,
        },
        "fairness": {
            "sex": {
                "demographic_parity_difference": 0.03,
                "demographic_parity_ratio": 0.93,
                "equalized_odds_difference": 0.04,
                "equalized_odds_ratio": 0.9,
                "equal_opportunity_difference": 0.02,
                "equal_opportunity_ratio": 0.97,
                "four_fifths": {
                    "threshold": 0.8,
                    "ratio": 0.93,
                    "passed": True,
                    "reference_group": "M",
                    "failing_groups": [],
                },
                "groups": {
                    "F": {"n": 4800, "selection_rate": 0.41, "tpr": 0.83, "fpr": 0.08},
                    "M": {"n": 5200, "selection_rate": 0.44, "tpr": 0.85, "fpr": 0.09},
                },
            }
        },
        "drift": {
            "columns": {
                "income": {"method": "psi", "statistic": 0.02, "threshold": 0.1, "drifted": False},
                "age": {"method": "ks", "statistic": 0.01, "threshold": 0.05, "drifted": False},
            },
            "share_drifted": 0.0,
            "dataset_drift": False,
        },
        "lineage": {
            "model_sha256": "a" * 64,
            "model_sha256_verified": True,
            "data_sha256": "b" * 64,
            "data_sha256_verified": True,
            "code_commit": "4f2c9e1",
            "parameters": {"C": 1.0, "max_iter": 200},
            "data_source": "internal_db",
            "trained_at": "2026-11-10T08:00:00Z",
            "data_age_days": 16,
        },
        "documentation": {
            "model_card_present": True,
            "complete": True,
            "missing_sections": [],
            "completeness": 1.0,
            "explainability_present": True,
        },
    },
    "approvals": [
        {"role": "risk_officer", "key_id": "1" * 64, "time": "2026-11-25T09:00:00Z"},
        {"role": "compliance", "key_id": "2" * 64, "time": "2026-11-25T10:00:00Z"},
    ],
    "production": {
        "accuracy": 0.9,
        "hours_below_threshold": 0,
        "drift_alert": False,
        "deployment_age_hours": 0,
    },
    "now": "2026-11-26T12:00:00Z",
}
