"""Audit records: what a node reports, signed by the node's enrolled key, as DSSE envelopes.

An **audit record** is a DSSE envelope of type :data:`AUDIT_PAYLOAD_TYPE`, signed by the
node's enrolled key, whose payload is the canonical JSON of::

    {"schema": "warden.audit/v1", "node_id": "emea-1", "seq": 1, "prev": "<64 hex>",
     "time": "2026-11-26T11:00:00Z", "event": "validation",
     "subject": {"model": "credit", "version": "7", "artifact_sha256": "<64 hex>"},
     "policy": {"name": "lending", "version": 3, "digest": "<64 hex>"} | null,
     "decision": {"allow": false, "violations": [...]} | null,
     "evidence": {...aggregates only...}}

Hub events (the hub's own stream) live in :mod:`trust.hub_event`; their names are re-exported
here, so ``from trust.record import HubEvent`` keeps working.

Invariants:

* The chaining fields follow :mod:`trust.stream`: ``seq`` starts at 1; ``prev`` is the
  lowercase hex SHA-256 of the same stream's previous envelope bytes (exactly as stored), or
  :data:`GENESIS_PREV` (64 zeros) for ``seq`` 1.
* An :class:`AuditRecord` is only built by :meth:`AuditRecord.from_envelope`, from the exact
  envelope bytes, which verifies the signature under the key it is given *before* reading the
  payload, and checks every field; building one directly raises
  :class:`~trust.errors.UnverifiedError`. There is no ``verify() -> bool``.
* Payloads are canonical JSON (RFC 8785) and must re-encode to the very bytes that were
  signed, so a record has one byte form and one digest (see
  :mod:`trust._internal.payload` for why the signature alone does not make this redundant).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, InitVar, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from trust import dsse
from trust._internal.fields import (
    check_fields,
    check_hex64,
    check_int,
    check_non_empty_str,
    check_schema,
)
from trust._internal.frozen import freeze, thaw
from trust._internal.verified import TOKEN, require_token
from trust.canonical import Sha256, canonical_json
from trust.errors import FormatError
from trust.hub_event import (
    HUB_EVENT_PAYLOAD_TYPE,
    HUB_EVENT_SCHEMA,
    ROTATION_SCHEMA,
    HubEvent,
    HubEventKind,
    build_hub_event,
    rotation_message,
    sign_hub_event,
)
from trust.keys import KeyId, PublicKey, SigningKey
from trust.stream import (
    GENESIS_PREV,
    HUB_NODE_ID,
    NodeId,
    check_chain_fields,
    check_node_id,
    envelope_digest,
    open_signed,
)
from trust.timeutil import format_time

__all__ = [
    "AUDIT_PAYLOAD_TYPE",
    "AUDIT_SCHEMA",
    "HUB_EVENT_PAYLOAD_TYPE",
    "HUB_EVENT_SCHEMA",
    "HUB_NODE_ID",
    "GENESIS_PREV",
    "ROTATION_SCHEMA",
    "NodeId",
    "EventType",
    "HubEventKind",
    "Subject",
    "PolicyRef",
    "Decision",
    "AuditRecord",
    "HubEvent",
    "build_record",
    "sign_record",
    "build_hub_event",
    "sign_hub_event",
    "rotation_message",
    "envelope_digest",
    "check_node_id",
]

AUDIT_PAYLOAD_TYPE = "application/vnd.warden.audit+json"
AUDIT_SCHEMA = "warden.audit/v1"

_RECORD_FIELDS = ("event", "node_id", "prev", "schema", "seq", "subject", "time")
_RECORD_OPTIONAL = ("decision", "evidence", "policy")


class EventType(StrEnum):
    """What an audit record reports."""

    VALIDATION = "validation"
    PROMOTE = "promote"
    BLOCK = "block"
    ROLLBACK = "rollback"
    ALERT = "alert"
    RETRAIN = "retrain"
    POLICY_APPLIED = "policy_applied"
    POLICY_REJECTED = "policy_rejected"
    MODEL_CARD = "model_card"
    # The agent pinned a new trust root (version N+1, proved by root N).
    ROOT_APPLIED = "root_applied"
    # The policy the agent enforces expired: no promotion until a fresh bundle arrives.
    POLICY_EXPIRED = "policy_expired"
    # A model version could not be validated (bad manifest, artefact, data): not promoted.
    VALIDATION_ERROR = "validation_error"
    # The agent, as a witness, caught the hub lying (inconsistent checkpoints, a record of
    # this node dropped, moved or rewritten).
    HUB_MISBEHAVIOUR = "hub_misbehaviour"
    # A model version's validation: evidence digest, the model card's SHA-256, the decision.
    MODEL_VALIDATED = "model_validated"
    # One production monitoring window evaluated (drift against the reference profile, and
    # performance once labels arrived); drift_alert when the policy's drift rule fired.
    MONITORING = "monitoring"
    DRIFT_ALERT = "drift_alert"
    # Rollback was required but no earlier version passes under the policy now in force.
    ROLLBACK_IMPOSSIBLE = "rollback_impossible"
    # The retraining hook ran (command or webhook): its outcome and duration.
    RETRAIN_TRIGGERED = "retrain_triggered"


@dataclass(frozen=True)
class Subject:
    """The model version a record is about."""

    model: str
    version: str
    artifact_sha256: Sha256

    @classmethod
    def from_obj(cls, obj: Any, *, what: str = "subject") -> Subject:
        """Parse and check the JSON form."""
        o = check_fields(obj, ("artifact_sha256", "model", "version"), what=what)
        return cls(
            check_non_empty_str(o["model"], what=f"{what}.model"),
            check_non_empty_str(o["version"], what=f"{what}.version"),
            check_hex64(o["artifact_sha256"], what=f"{what}.artifact_sha256"),
        )

    def to_obj(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "model": self.model,
            "version": self.version,
            "artifact_sha256": self.artifact_sha256,
        }


@dataclass(frozen=True)
class PolicyRef:
    """The policy bundle a decision was taken under."""

    name: str
    version: int
    digest: Sha256

    @classmethod
    def from_obj(cls, obj: Any, *, what: str = "policy") -> PolicyRef:
        """Parse and check the JSON form."""
        o = check_fields(obj, ("digest", "name", "version"), what=what)
        return cls(
            check_non_empty_str(o["name"], what=f"{what}.name"),
            check_int(o["version"], what=f"{what}.version", minimum=1),
            check_hex64(o["digest"], what=f"{what}.digest"),
        )

    def to_obj(self) -> dict[str, Any]:
        """The JSON form."""
        return {"name": self.name, "version": self.version, "digest": self.digest}


@dataclass(frozen=True)
class Decision:
    """The policy's answer: allow, and the violations (strings or objects) behind a deny."""

    allow: bool
    violations: tuple[Any, ...] = ()

    @classmethod
    def from_obj(cls, obj: Any, *, what: str = "decision") -> Decision:
        """Parse and check the JSON form."""
        o = check_fields(obj, ("allow", "violations"), what=what)
        if not isinstance(o["allow"], bool):
            raise FormatError(f"{what}.allow must be true or false, got {o['allow']!r}")
        if not isinstance(o["violations"], list):
            raise FormatError(f"{what}.violations must be a list")
        return cls(o["allow"], tuple(freeze(v) for v in o["violations"]))

    def to_obj(self) -> dict[str, Any]:
        """The JSON form."""
        return {"allow": self.allow, "violations": [thaw(v) for v in self.violations]}


@dataclass(frozen=True)
class AuditRecord:
    """A verified audit record. Build only with :meth:`from_envelope`."""

    node_id: NodeId
    seq: int
    prev: Sha256
    time: datetime
    event: EventType
    subject: Subject
    policy: PolicyRef | None
    decision: Decision | None
    evidence: Mapping[str, Any]
    envelope: bytes
    signer: KeyId
    _: KW_ONLY
    _token: InitVar[object] = None

    def __post_init__(self, _token: object) -> None:
        require_token(_token, type(self), "AuditRecord.from_envelope")

    @property
    def digest(self) -> Sha256:
        """Hex SHA-256 of the envelope bytes: what the node's next record names as ``prev``."""
        return envelope_digest(self.envelope)

    @classmethod
    def from_envelope(
        cls, data: bytes, node_key: PublicKey, *, what: str = "audit record"
    ) -> AuditRecord:
        """Verify the exact envelope bytes ``data`` under ``node_key`` and parse the payload.

        Raises :class:`SignatureError` if ``node_key`` did not sign it and :class:`FormatError`
        for anything but ``bytes``, a wrong payload type or any malformed field.
        """
        obj = open_signed(data, node_key, AUDIT_PAYLOAD_TYPE, what=what)
        o = check_fields(obj, _RECORD_FIELDS, _RECORD_OPTIONAL, what=what)
        check_schema(o["schema"], AUDIT_SCHEMA, what=what)
        node_id = check_node_id(o["node_id"], what=f"{what}: node_id")
        if node_id == HUB_NODE_ID:
            raise FormatError(f"{what}: node_id {HUB_NODE_ID!r} is reserved for the hub")
        seq, prev, time = check_chain_fields(o, what=what)
        try:
            event = EventType(o["event"])
        except ValueError as exc:
            raise FormatError(f"{what}: unknown event type {o['event']!r}") from exc
        evidence = o.get("evidence", {})
        if not isinstance(evidence, dict):
            raise FormatError(f"{what}: evidence must be an object")
        policy = o.get("policy")
        decision = o.get("decision")
        return cls(
            node_id=node_id,
            seq=seq,
            prev=prev,
            time=time,
            event=event,
            subject=Subject.from_obj(o["subject"], what=f"{what}: subject"),
            policy=None if policy is None else PolicyRef.from_obj(policy, what=f"{what}: policy"),
            decision=None
            if decision is None
            else Decision.from_obj(decision, what=f"{what}: decision"),
            evidence=freeze(evidence),
            envelope=data,
            signer=node_key.key_id,
            _token=TOKEN,
        )


def build_record(
    *,
    node_id: str,
    seq: int,
    prev: str,
    time: datetime,
    event: EventType | str,
    subject: Subject,
    policy: PolicyRef | None = None,
    decision: Decision | None = None,
    evidence: Mapping[str, Any] | None = None,
) -> bytes:
    """The canonical JSON payload of an audit record (checked as :meth:`from_envelope` would)."""
    payload = canonical_json(
        {
            "schema": AUDIT_SCHEMA,
            "node_id": node_id,
            "seq": seq,
            "prev": prev,
            "time": format_time(time),
            "event": EventType(event).value,
            "subject": subject.to_obj(),
            "policy": None if policy is None else policy.to_obj(),
            "decision": None if decision is None else decision.to_obj(),
            "evidence": thaw(evidence or {}),
        }
    )
    return payload


def sign_record(payload: bytes, key: SigningKey) -> bytes:
    """Sign a record payload; return the envelope bytes to store and send (checked first)."""
    env_bytes = dsse.sign(AUDIT_PAYLOAD_TYPE, payload, [key]).to_json()
    AuditRecord.from_envelope(env_bytes, key.public)  # refuse to emit a record nobody accepts
    return env_bytes


