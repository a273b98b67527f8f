"""Human approvals: a DSSE envelope signed by a threshold of an ``approver:<role>`` role.

Payload (``payloadType`` :data:`APPROVAL_PAYLOAD_TYPE`, canonical JSON)::

    {"schema": "warden.approval/v1", "role": "risk_officer", "subject": "credit:7",
     "decision": "approve", "reason": "bias reviewed, see ticket 42",
     "time": "2026-11-26T11:00:00Z"}

``subject`` names what is approved (by convention ``model:version``); ``decision`` is
``approve`` or ``reject``; ``reason`` is optional. The role named in the payload is the role
whose threshold must have signed — an approval cannot borrow another role's authority.

Invariant: :meth:`Approval.from_envelope` is the only constructor and verifies before it
parses fields; the hub stores the envelope bytes verbatim.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from trust import dsse
from trust.canonical import Sha256, canonical_json, loads_object, sha256_hex
from trust.errors import FormatError, TrustError
from trust.keys import KeyId
from trust.root import APPROVER_PREFIX, TrustRoot
from trust.timeutil import parse_time

__all__ = ["APPROVAL_PAYLOAD_TYPE", "APPROVAL_SCHEMA", "Approval", "build_approval"]

APPROVAL_PAYLOAD_TYPE = "application/vnd.warden.approval+json"
APPROVAL_SCHEMA = "warden.approval/v1"
_REQUIRED = frozenset({"schema", "role", "subject", "decision", "time"})
_OPTIONAL = frozenset({"reason"})
_DECISIONS = frozenset({"approve", "reject"})


@dataclass(frozen=True)
class Approval:
    """A verified approval."""

    role: str
    subject: str
    decision: str
    reason: str
    time: datetime
    digest: Sha256
    envelope: bytes
    signers: frozenset[KeyId]

    @classmethod
    def from_envelope(
        cls, data: bytes, root: TrustRoot, *, what: str = "approval"
    ) -> Approval:
        """Parse, then verify against the named ``approver:<role>`` of ``root``; raise if not."""
        env = dsse.Envelope.from_json(data, what=what)
        if env.payload_type != APPROVAL_PAYLOAD_TYPE:
            raise FormatError(
                f"{what}: payloadType is {env.payload_type!r}, expected {APPROVAL_PAYLOAD_TYPE!r}"
            )
        obj = loads_object(env.payload, what=f"{what}: payload")
        role = obj.get("role")
        if not isinstance(role, str) or not role:
            raise FormatError(f"{what}: field 'role' must be a non-empty string")
        if role not in root.approver_roles():
            raise TrustError(
                f"{what}: role {role!r} is not an approver role of trust root v{root.version} "
                f"(approver roles: {', '.join(root.approver_roles()) or 'none'})"
            )
        signers = root.verify_role(env, APPROVER_PREFIX + role,
                                   payload_type=APPROVAL_PAYLOAD_TYPE, what=what)
        unknown = set(obj) - _REQUIRED - _OPTIONAL
        if unknown:
            raise FormatError(f"{what}: unknown field {sorted(unknown)[0]!r}")
        missing = _REQUIRED - set(obj)
        if missing:
            raise FormatError(f"{what}: missing field {sorted(missing)[0]!r}")
        if obj["schema"] != APPROVAL_SCHEMA:
            raise FormatError(f"{what}: schema is {obj['schema']!r}, expected {APPROVAL_SCHEMA!r}")
        subject = obj["subject"]
        if not isinstance(subject, str) or not subject:
            raise FormatError(f"{what}: field 'subject' must be a non-empty string")
        if obj["decision"] not in _DECISIONS:
            raise FormatError(f"{what}: decision {obj['decision']!r} is not approve or reject")
        reason = obj.get("reason", "")
        if not isinstance(reason, str):
            raise FormatError(f"{what}: field 'reason' must be a string")
        if canonical_json(obj) != env.payload:
            raise FormatError(f"{what}: payload is not canonical JSON (RFC 8785)")
        return cls(role, subject, obj["decision"], reason,
                   parse_time(obj["time"], what=f"{what}: time"), sha256_hex(data), data,
                   signers)


def build_approval(
    *, role: str, subject: str, decision: str, time: str, reason: str = ""
) -> bytes:
    """The canonical payload of an approval (sign it with ``dsse.sign``)."""
    obj: dict[str, Any] = {"schema": APPROVAL_SCHEMA, "role": role, "subject": subject,
                           "decision": decision, "time": time}
    if reason:
        obj["reason"] = reason
    return canonical_json(obj)
