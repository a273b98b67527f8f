"""Human approvals: a DSSE envelope signed by a threshold of an ``approver:<role>`` role.

Payload (``payloadType`` :data:`APPROVAL_PAYLOAD_TYPE`, canonical JSON)::

    {"schema": "warden.approval/v1", "role": "risk_officer", "subject": "credit:7",
     "decision": "approve", "reason": "bias reviewed, see ticket 42",
     "time": "2026-11-26T11:00:00Z"}

``subject`` names what is approved (by convention ``model:version``); ``decision`` is
``approve`` or ``reject``; ``reason`` is optional. The role named in the payload is the role
whose threshold must have signed — an approval cannot borrow another role's authority.

Invariant: :meth:`Approval.from_envelope` is the only constructor (building an
:class:`Approval` directly raises :class:`~trust.errors.UnverifiedError`); it takes the exact
envelope bytes and verifies before it checks fields; the hub stores those bytes verbatim.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, InitVar, dataclass
from datetime import datetime
from typing import Any

from trust import dsse
from trust._internal.fields import (
    check_fields,
    check_non_empty_str,
    check_payload_type,
    check_schema,
    check_str,
)
from trust._internal.payload import load_canonical_object
from trust._internal.verified import TOKEN, require_token
from trust.canonical import Sha256, canonical_json, sha256_hex
from trust.errors import FormatError, TrustError
from trust.keys import KeyId
from trust.root import APPROVER_PREFIX, TrustRoot
from trust.timeutil import parse_time

__all__ = ["APPROVAL_PAYLOAD_TYPE", "APPROVAL_SCHEMA", "Approval", "build_approval"]

APPROVAL_PAYLOAD_TYPE = "application/vnd.warden.approval+json"
APPROVAL_SCHEMA = "warden.approval/v1"
_REQUIRED = ("decision", "role", "schema", "subject", "time")
_OPTIONAL = ("reason",)
_DECISIONS = frozenset({"approve", "reject"})


@dataclass(frozen=True)
class Approval:
    """A verified approval. Build only with :meth:`from_envelope`."""

    role: str
    subject: str
    decision: str
    reason: str
    time: datetime
    digest: Sha256
    envelope: bytes
    signers: frozenset[KeyId]
    _: KW_ONLY
    _token: InitVar[object] = None

    def __post_init__(self, _token: object) -> None:
        require_token(_token, type(self), "Approval.from_envelope")

    @classmethod
    def from_envelope(cls, data: bytes, root: TrustRoot, *, what: str = "approval") -> Approval:
        """Parse the exact envelope bytes ``data``, then verify them against the named
        ``approver:<role>`` of ``root``; raise if not (anything but ``bytes`` included)."""
        env = dsse.from_bytes(data, what=what)
        check_payload_type(env.payload_type, APPROVAL_PAYLOAD_TYPE, what=what)
        # The payload names the role whose threshold must have signed, so it is read first —
        # but nothing in it is used before that threshold verified.
        obj = load_canonical_object(env.payload, what=what)
        role = check_non_empty_str(obj.get("role"), what=f"{what}: field 'role'")
        if role not in root.approver_roles():
            raise TrustError(
                f"{what}: role {role!r} is not an approver role of trust root v{root.version} "
                f"(approver roles: {', '.join(root.approver_roles()) or 'none'})"
            )
        signers = root.verify_role(
            env, APPROVER_PREFIX + role, payload_type=APPROVAL_PAYLOAD_TYPE, what=what
        )
        check_fields(obj, _REQUIRED, _OPTIONAL, what=what)
        check_schema(obj["schema"], APPROVAL_SCHEMA, what=what)
        subject = check_non_empty_str(obj["subject"], what=f"{what}: field 'subject'")
        if obj["decision"] not in _DECISIONS:
            raise FormatError(f"{what}: decision {obj['decision']!r} is not approve or reject")
        reason = check_str(obj.get("reason", ""), what=f"{what}: field 'reason'")
        return cls(
            role,
            subject,
            obj["decision"],
            reason,
            parse_time(obj["time"], what=f"{what}: time"),
            sha256_hex(data),
            data,
            signers,
            _token=TOKEN,
        )


def build_approval(
    *, role: str, subject: str, decision: str, time: str, reason: str = ""
) -> bytes:
    """The canonical payload of an approval (sign it with ``dsse.sign``)."""
    obj: dict[str, Any] = {"schema": APPROVAL_SCHEMA, "role": role, "subject": subject,
                           "decision": decision, "time": time}
    if reason:
        obj["reason"] = reason
    return canonical_json(obj)
