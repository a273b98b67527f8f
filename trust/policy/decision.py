"""The decision a policy bundle returns for one input, and how a bundle's result is read.

A :class:`Decision` is what the agent enforces, records in the audit ledger, and what
``warden policy eval`` prints. Everything in it except ``decision_id``, ``evaluated_at`` and
``duration_ms`` is a pure function of (bundle digest, input): the same bundle on the same input
yields the same ``allow``, the same violations in the same order, and the same warnings.

Invariants:

* ``allow`` is ``True`` only when the bundle's convention says allow *and* there is no
  violation; a violation always forces ``allow = False``.
* ``violations`` are sorted by (rule, message, severity) and de-duplicated; ``warnings`` are
  sorted and de-duplicated. Rego sets have no order, so Warden imposes one.
* ``input_sha256`` is the SHA-256 of the RFC 8785 canonical JSON of the *whole* input as given
  to the engine, projected or not: with the bundle digest it is what a replay needs. When the
  bundle declares an ``input_projection``, ``projection`` holds its paths and
  ``projected_sha256`` the SHA-256 of the canonical JSON Rego actually saw; without one both
  are ``None``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from trust.canonical import Sha256
from trust.timeutil import format_time

__all__ = ["Convention", "Severity", "Violation", "Decision"]


class Convention(StrEnum):
    """How the value of a bundle's entrypoint is turned into allow / violations.

    * ``document`` — the entrypoint is a package (an object). ``allow`` (if present) must be
      true, and the sets/lists ``deny``, ``violation`` and ``violations`` hold violations
      (strings, or objects with ``message``/``msg``, optional ``rule``/``id`` and ``severity``);
      ``warn``/``warnings`` hold warnings. Undefined ``allow`` with no deny rule is a denial.
    * ``allow_rule`` — the entrypoint is a boolean rule; ``true`` allows, anything else denies
      (OPA's ``default allow = false`` idiom). Undefined denies.
    * ``deny_rules`` — the entrypoint is a collection of violations (a v1 ``deny contains msg``
      set, returned as a list, or a v0 partial set ``violation[msg]``, returned as
      ``{msg: true}``); empty or undefined allows.
    * ``deny_rule`` — the entrypoint is a boolean that *requires action* when true (for example
      ``rollback_required``); ``true`` denies, ``false``/undefined allows.
    """

    DOCUMENT = "document"
    ALLOW_RULE = "allow_rule"
    DENY_RULES = "deny_rules"
    DENY_RULE = "deny_rule"


class Severity(StrEnum):
    """How serious a violation is. Any violation denies; severity helps people triage."""

    CRITICAL = "critical"
    HIGH = "high"
    ERROR = "error"
    MEDIUM = "medium"
    LOW = "low"


@dataclass(frozen=True, order=True)
class Violation:
    """One broken rule: which rule, a human message, and a severity."""

    rule: str
    message: str
    severity: str = Severity.ERROR.value

    def to_dict(self) -> dict[str, str]:
        """JSON form."""
        return {"rule": self.rule, "message": self.message, "severity": self.severity}


@dataclass(frozen=True)
class Decision:
    """The outcome of evaluating one bundle on one input."""

    bundle_name: str
    bundle_version: int
    bundle_digest: Sha256
    entrypoint: str
    allow: bool
    violations: tuple[Violation, ...]
    warnings: tuple[str, ...]
    input_sha256: Sha256
    evaluated_at: datetime
    duration_ms: float
    signature_verified: bool
    projection: tuple[str, ...] | None = None
    projected_sha256: Sha256 | None = None
    decision_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def to_dict(self) -> dict[str, Any]:
        """JSON form (what ``warden policy eval`` prints and audit records embed)."""
        return {
            "decision_id": self.decision_id,
            "bundle": {
                "name": self.bundle_name,
                "version": self.bundle_version,
                "digest": self.bundle_digest,
                "signature_verified": self.signature_verified,
            },
            "entrypoint": self.entrypoint,
            "allow": self.allow,
            "violations": [v.to_dict() for v in self.violations],
            "warnings": list(self.warnings),
            "input_sha256": self.input_sha256,
            "input_projection": (
                None
                if self.projection is None
                else {"paths": list(self.projection), "sha256": self.projected_sha256}
            ),
            "evaluated_at": format_time(self.evaluated_at),
            "duration_ms": round(self.duration_ms, 3),
        }
