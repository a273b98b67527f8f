"""The policy input an agent builds from its checks, its registry and verified approvals.

Shape (``policies/input.schema.json``, schema ``warden.policy-input/v1``)::

    {"schema": "warden.policy-input/v1",
     "model": {"name", "version", "stage", "n_features"?, "artifact_sha256"?},
     "evidence": <warden.evidence/v1 document from agent.checks>,
     "approvals": [{"role", "key_id", "time"}],        # verified signatures only
     "production": {"accuracy"?, "hours_below_threshold"?, "drift_alert"?,
                    "deployment_age_hours"?},
     "now": "2026-11-26T11:00:00Z"}

Invariants: the evidence is passed through unchanged (it holds aggregates only, never a row);
an approval appears only after its envelope verified against the trust root's
``approver:<role>`` threshold and only when it approves exactly this model version; ``now``
is explicit, so a decision is a pure function of (bundle, input) and can be replayed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from trust.approval import Approval
from trust.errors import FormatError
from trust.timeutil import format_time

__all__ = [
    "POLICY_INPUT_SCHEMA",
    "ModelInfo",
    "ProductionStatus",
    "build_policy_input",
    "subject_of",
]

POLICY_INPUT_SCHEMA = "warden.policy-input/v1"
_PRODUCTION_FIELDS = ("accuracy", "hours_below_threshold", "drift_alert", "deployment_age_hours")


def subject_of(name: str, version: str) -> str:
    """The approval subject naming one model version: ``name:version``."""
    return f"{name}:{version}"


@dataclass(frozen=True)
class ModelInfo:
    """The model version a decision is about, from the registry."""

    name: str
    version: str
    stage: str
    n_features: int | None = None
    artifact_sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``model`` object of the policy input (absent fields omitted, never zeroed)."""
        out: dict[str, Any] = {"name": self.name, "version": self.version, "stage": self.stage}
        if self.n_features is not None:
            out["n_features"] = self.n_features
        if self.artifact_sha256 is not None:
            out["artifact_sha256"] = self.artifact_sha256
        return out


@dataclass(frozen=True)
class ProductionStatus:
    """What monitoring knows about the deployed version (feeds the rollback rules)."""

    accuracy: float | None = None
    hours_below_threshold: float | None = None
    drift_alert: bool | None = None
    deployment_age_hours: float | None = None

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any], *, what: str) -> ProductionStatus:
        """Parse a ``production`` object; unknown keys are errors naming ``what``."""
        unknown = set(obj) - set(_PRODUCTION_FIELDS)
        if unknown:
            raise FormatError(
                f"{what}: unknown key {sorted(unknown)[0]!r} "
                f"(known: {', '.join(_PRODUCTION_FIELDS)})"
            )
        for key in ("accuracy", "hours_below_threshold", "deployment_age_hours"):
            value = obj.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise FormatError(f"{what}: {key} must be a number, got {value!r}")
        alert = obj.get("drift_alert")
        if alert is not None and not isinstance(alert, bool):
            raise FormatError(f"{what}: drift_alert must be true or false, got {alert!r}")
        return cls(**{k: obj.get(k) for k in _PRODUCTION_FIELDS})

    def to_dict(self) -> dict[str, Any]:
        """The ``production`` object (fields that are unknown are omitted)."""
        return {k: getattr(self, k) for k in _PRODUCTION_FIELDS if getattr(self, k) is not None}


def build_policy_input(
    evidence: Mapping[str, Any],
    model: ModelInfo,
    *,
    now: datetime,
    approvals: Sequence[Approval] = (),
    production: ProductionStatus | None = None,
) -> dict[str, Any]:
    """Assemble the policy input. Approvals for other subjects, and rejections, are left out."""
    subject = subject_of(model.name, model.version)
    approval_items = [
        {"role": a.role, "key_id": key_id, "time": format_time(a.time)}
        for a in approvals
        if a.subject == subject and a.decision == "approve"
        for key_id in sorted(a.signers)
    ]
    return {
        "schema": POLICY_INPUT_SCHEMA,
        "model": model.to_dict(),
        "evidence": dict(evidence),
        "approvals": approval_items,
        "production": (production or ProductionStatus()).to_dict(),
        "now": format_time(now),
    }
