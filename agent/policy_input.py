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
the evidence is bound to the model version decided on — its lineage must name exactly that
model name and version (and artefact digest, when both are known), and evidence naming no
model is used only when the caller says so explicitly (:func:`bind_evidence`); an approval
appears only after its envelope verified against the trust root's
``approver:<role>`` threshold and only when it approves exactly this model version; ``now``
is explicit, so a decision is a pure function of (bundle, input) and can be replayed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from trust.approval import Approval
from trust.errors import FormatError, UsageError
from trust.timeutil import format_time

__all__ = [
    "POLICY_INPUT_SCHEMA",
    "ModelInfo",
    "ProductionStatus",
    "bind_evidence",
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


def bind_evidence(
    evidence: Mapping[str, Any],
    model: ModelInfo,
    *,
    what: str = "evidence",
    allow_unnamed: bool = False,
) -> None:
    """Refuse evidence that is not about ``model``: a decision must judge the version it names.

    The evidence's ``lineage.model_name`` and ``lineage.model_version`` must equal the
    model's name and version, and ``lineage.model_sha256`` its ``artifact_sha256`` when both
    are known. Evidence that names no model, or no version, is accepted only with
    ``allow_unnamed`` (the caller vouches for it); a *different* name, version or digest is
    refused even then. Raises UsageError naming ``what`` and both sides.
    """
    lineage = evidence.get("lineage")
    lin: Mapping[str, Any] = lineage if isinstance(lineage, Mapping) else {}
    name, version = lin.get("model_name"), lin.get("model_version")
    asked = f"{model.name} {model.version}"
    hint = "decide on the model version the evidence was produced for, or re-run the checks"
    if (name is not None and name != model.name) or (
        version is not None and version != model.version
    ):
        about = f"model {name!r}" if name is not None else "an unnamed model"
        about += f" version {version!r}" if version is not None else " (no version)"
        raise UsageError(
            f"{what}: evidence is about {about} (its lineage), not model {model.name!r} "
            f"version {model.version!r} (--model/--version); refusing to decide from it",
            hint=hint,
        )
    digest = lin.get("model_sha256")
    if digest is not None and model.artifact_sha256 is not None and digest != model.artifact_sha256:
        raise UsageError(
            f"{what}: evidence was computed on artefact sha256 {digest}, not "
            f"{model.artifact_sha256} (--artifact-sha256)",
            hint=hint,
        )
    if (name is None or version is None) and not allow_unnamed:
        missing = "model" if name is None else "model version"
        raise UsageError(
            f"{what}: evidence names no {missing} (lineage.model_name/model_version), so "
            f"nothing ties it to {asked}",
            hint="run 'warden check run' with --manifest naming the model and version, or "
            "pass --allow-unnamed-evidence if you vouch that this evidence is about it",
        )


def build_policy_input(
    evidence: Mapping[str, Any],
    model: ModelInfo,
    *,
    now: datetime,
    approvals: Sequence[Approval] = (),
    production: ProductionStatus | None = None,
    evidence_source: str = "evidence",
    allow_unnamed_evidence: bool = False,
) -> dict[str, Any]:
    """Assemble the policy input. Approvals for other subjects, and rejections, are left out.

    The evidence is first bound to ``model`` (:func:`bind_evidence`; ``evidence_source``
    names it in errors), so no caller can decide on one version from another's evidence.
    """
    bind_evidence(evidence, model, what=evidence_source, allow_unnamed=allow_unnamed_evidence)
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
