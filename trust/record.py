"""Audit records (signed by a node) and hub events (signed by the hub), as DSSE envelopes.

An **audit record** is a DSSE envelope of type :data:`AUDIT_PAYLOAD_TYPE`, signed by the
node's enrolled key, whose payload is the canonical JSON of::

    {"schema": "warden.audit/v1", "node_id": "emea-1", "seq": 1, "prev": "<64 hex>",
     "time": "2026-11-26T11:00:00Z", "event": "validation",
     "subject": {"model": "credit", "version": "7", "artifact_sha256": "<64 hex>"},
     "policy": {"name": "lending", "version": 3, "digest": "<64 hex>"} | null,
     "decision": {"allow": false, "violations": [...]} | null,
     "evidence": {...aggregates only...}}

A **hub event** is a DSSE envelope of type :data:`HUB_EVENT_PAYLOAD_TYPE`, signed by the hub
key, with the same chaining fields (node id :data:`HUB_NODE_ID`) and a ``kind`` plus ``body``:
``enrollment``, ``key_rotation``, ``policy_publication`` or ``approval``.

Invariants:

* ``seq`` starts at 1; ``prev`` is the lowercase hex SHA-256 of the same stream's previous
  envelope bytes (exactly as stored), or :data:`GENESIS_PREV` (64 zeros) for ``seq`` 1.
* Objects are only built by ``from_envelope``, which verifies the signature under the key it
  is given *before* reading the payload, and checks every field; there is no unverified
  instance and no ``verify() -> bool``.
* Payloads are canonical JSON (RFC 8785) and must re-encode to the very bytes that were
  signed, so a record has one byte form and one digest. The signature alone does not make
  this check redundant even though the envelope is stored verbatim: it guarantees which bytes
  the node signed, not that every reader sees the same *fields* in them. A duplicate key
  (``{"node_id":"a",...,"node_id":"b"}``: Python keeps the last, other parsers the first), an
  integer beyond 2^53 or a lone surrogate escape would let the hub accept a record as one
  node's ``seq`` n while an auditor's parser reads another node or seq. The check refuses all
  of these; it costs one C ``json.dumps`` per record (the exact ``rfc8785`` path runs only
  for payloads with non-ASCII text, long integers or unusual floats).
* A ``key_rotation`` event carries the old and new keys and the old key's signature over
  :func:`rotation_message`; the event does not build unless that signature verifies.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NewType

from trust import dsse
from trust.canonical import Sha256, canonical_json, sha256_hex
from trust.errors import FormatError, SignatureError
from trust.keys import KeyId, PublicKey, SigningKey
from trust.timeutil import format_time, parse_time

__all__ = [
    "AUDIT_PAYLOAD_TYPE",
    "AUDIT_SCHEMA",
    "HUB_EVENT_PAYLOAD_TYPE",
    "HUB_EVENT_SCHEMA",
    "HUB_NODE_ID",
    "GENESIS_PREV",
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
HUB_EVENT_PAYLOAD_TYPE = "application/vnd.warden.hub-event+json"
HUB_EVENT_SCHEMA = "warden.hub-event/v1"
ROTATION_SCHEMA = "warden.key-rotation/v1"
HUB_NODE_ID = "hub"
GENESIS_PREV = Sha256("0" * 64)

NodeId = NewType("NodeId", str)
"""A node's name: 1–128 characters of ``[A-Za-z0-9._-]``, starting alphanumeric."""

_MAX_SAFE_INT = 2**53 - 1
_NODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


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


class HubEventKind(StrEnum):
    """What a hub event records."""

    ENROLLMENT = "enrollment"
    KEY_ROTATION = "key_rotation"
    POLICY_PUBLICATION = "policy_publication"
    APPROVAL = "approval"


def envelope_digest(envelope_bytes: bytes) -> Sha256:
    """The digest a successor's ``prev`` names: hex SHA-256 of the exact envelope bytes."""
    return sha256_hex(envelope_bytes)


def check_node_id(value: Any, *, what: str = "node_id") -> NodeId:
    """Validate a node id (also used by the hub for ids arriving from the network)."""
    if not isinstance(value, str) or not _NODE_ID.fullmatch(value):
        raise FormatError(f"{what} {value!r} must match [A-Za-z0-9][A-Za-z0-9._-]{{0,127}}")
    return NodeId(value)


def _hex64(value: Any, *, what: str) -> Sha256:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise FormatError(f"{what} must be 64 lowercase hex characters, got {value!r}")
    return Sha256(value)


def _str(value: Any, *, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise FormatError(f"{what} must be a non-empty string, got {value!r}")
    return value


def _int(value: Any, *, what: str, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise FormatError(f"{what} must be an integer ≥ {minimum}, got {value!r}")
    return value


def _fields(obj: Any, required: set[str], optional: set[str], *, what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise FormatError(f"{what} must be an object")
    unknown = set(obj) - required - optional
    if unknown:
        raise FormatError(f"{what}: unknown field {sorted(unknown)[0]!r}")
    missing = required - set(obj)
    if missing:
        raise FormatError(f"{what}: missing field {sorted(missing)[0]!r}")
    return obj


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class Subject:
    """The model version a record is about."""

    model: str
    version: str
    artifact_sha256: Sha256

    @classmethod
    def from_obj(cls, obj: Any, *, what: str = "subject") -> Subject:
        """Parse and check the JSON form."""
        o = _fields(obj, {"model", "version", "artifact_sha256"}, set(), what=what)
        return cls(
            _str(o["model"], what=f"{what}.model"),
            _str(o["version"], what=f"{what}.version"),
            _hex64(o["artifact_sha256"], what=f"{what}.artifact_sha256"),
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
        o = _fields(obj, {"name", "version", "digest"}, set(), what=what)
        return cls(
            _str(o["name"], what=f"{what}.name"),
            _int(o["version"], what=f"{what}.version", minimum=1),
            _hex64(o["digest"], what=f"{what}.digest"),
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
        o = _fields(obj, {"allow", "violations"}, set(), what=what)
        if not isinstance(o["allow"], bool):
            raise FormatError(f"{what}.allow must be true or false, got {o['allow']!r}")
        if not isinstance(o["violations"], list):
            raise FormatError(f"{what}.violations must be a list")
        return cls(o["allow"], tuple(_freeze(v) for v in o["violations"]))

    def to_obj(self) -> dict[str, Any]:
        """The JSON form."""
        return {"allow": self.allow, "violations": [_thaw(v) for v in self.violations]}


def _chain_fields(o: dict[str, Any], *, what: str) -> tuple[int, Sha256, datetime]:
    seq = _int(o["seq"], what=f"{what}: seq", minimum=1)
    prev = _hex64(o["prev"], what=f"{what}: prev")
    if seq == 1 and prev != GENESIS_PREV:
        raise FormatError(f"{what}: seq 1 must have prev = 64 zeros, got {prev[:16]}…")
    time = parse_time(o["time"], what=f"{what}: time")
    if not isinstance(o["time"], str) or not o["time"].endswith("Z"):
        raise FormatError(f"{what}: time must be UTC with a 'Z' suffix, got {o['time']!r}")
    return seq, prev, time


def _plain_json(value: Any) -> bool:
    """Whether Python's sorted compact JSON of ``value`` is certainly its RFC 8785 form.

    True unless ``value`` holds a float Python and ECMAScript print differently (integral,
    tiny or huge ones), an integer beyond 2^53 - 1 (which RFC 8785 refuses) or a key beyond
    the BMP (UTF-16 and code-point order then differ).
    """
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            for k, x in v.items():
                if not k.isascii() and max(k) > "\uffff":
                    return False
                stack.append(x)
        elif isinstance(v, list):
            stack.extend(v)
        elif (isinstance(v, int) and not isinstance(v, bool) and abs(v) > _MAX_SAFE_INT) or (
            isinstance(v, float) and not _safe_float(v)
        ):
            return False
    return True


def _safe_float(f: float) -> bool:
    return 1e-4 <= abs(f) < 1e16 and not f.is_integer()


class _Numbers:
    """What the payload parser saw of the numbers, for the canonical fast path."""

    __slots__ = ("floats", "long_int")

    def __init__(self) -> None:
        self.floats: list[float] = []
        self.long_int = False

    def parse_float(self, text: str) -> float:
        f = float(text)
        self.floats.append(f)
        return f

    def parse_int(self, text: str) -> int:
        # 16+ characters may exceed 2^53 - 1, which RFC 8785 treats differently: slow path.
        if len(text) > 15:
            self.long_int = True
        return int(text)


def _is_canonical(obj: Any, data: bytes, numbers: _Numbers) -> bool:
    """``canonical_json(obj) == data``, fast for ordinary payloads (rfc8785 is pure Python).

    ``numbers`` is what the parser met. An ASCII text without integers of 16 or more digits,
    whose floats print alike in Python and ECMAScript (both print the shortest round-trip
    digits, in plain notation inside ``_safe_float``'s range), equals its RFC 8785 form exactly
    when it equals Python's sorted compact encoding; anything else takes the slow exact path.
    """
    try:
        fast = json.dumps(
            obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        fast = b""
    if fast == data:
        if data.isascii() and not numbers.long_int and all(map(_safe_float, numbers.floats)):
            return True
        if _plain_json(obj):
            return True
    try:
        return canonical_json(obj) == data
    except FormatError:
        return False


def _load_payload(data: bytes, *, what: str) -> tuple[dict[str, Any], _Numbers]:
    # Plain json.loads (not canonical.loads_strict): a duplicate key cannot survive the
    # canonical re-encoding check that follows, and this path runs once per ingested record.
    # Decoding as UTF-8 first refuses the UTF-16/32 texts json.loads(bytes) would accept.
    numbers = _Numbers()
    try:
        obj = json.loads(
            data.decode("utf-8"), parse_float=numbers.parse_float, parse_int=numbers.parse_int
        )
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FormatError(f"{what}: not valid JSON ({exc})") from exc
    except RecursionError as exc:
        raise FormatError(f"{what}: JSON nested too deeply") from exc
    except ValueError as exc:  # int() refuses integers of more than 4300 digits
        raise FormatError(f"{what}: a number is out of range ({exc})") from exc
    if not isinstance(obj, dict):
        raise FormatError(f"{what}: expected a JSON object, got {type(obj).__name__}")
    return obj, numbers


def _open(
    envelope: dsse.Envelope | bytes, key: PublicKey, payload_type: str, *, what: str
) -> tuple[dsse.Envelope, bytes, dict[str, Any]]:
    env = (
        envelope
        if isinstance(envelope, dsse.Envelope)
        else dsse.Envelope.from_json(envelope, what=what)
    )
    raw = env.raw if env.raw is not None else env.to_json()
    dsse.verify(env, {key.key_id: key}, 1, payload_type=payload_type, what=what)
    obj, numbers = _load_payload(env.payload, what=f"{what}: payload")
    if not _is_canonical(obj, env.payload, numbers):
        raise FormatError(f"{what}: payload is not canonical JSON (RFC 8785)")
    return env, raw, obj


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

    @property
    def digest(self) -> Sha256:
        """Hex SHA-256 of the envelope bytes: what the node's next record names as ``prev``."""
        return envelope_digest(self.envelope)

    @classmethod
    def from_envelope(
        cls, envelope: dsse.Envelope | bytes, node_key: PublicKey, *, what: str = "audit record"
    ) -> AuditRecord:
        """Verify ``envelope`` under ``node_key`` and parse its payload.

        Raises :class:`SignatureError` if ``node_key`` did not sign it and :class:`FormatError`
        for a wrong payload type or any malformed field.
        """
        _, raw, obj = _open(envelope, node_key, AUDIT_PAYLOAD_TYPE, what=what)
        o = _fields(
            obj,
            {"schema", "node_id", "seq", "prev", "time", "event", "subject"},
            {"policy", "decision", "evidence"},
            what=what,
        )
        if o["schema"] != AUDIT_SCHEMA:
            raise FormatError(f"{what}: schema is {o['schema']!r}, expected {AUDIT_SCHEMA!r}")
        node_id = check_node_id(o["node_id"], what=f"{what}: node_id")
        if node_id == HUB_NODE_ID:
            raise FormatError(f"{what}: node_id {HUB_NODE_ID!r} is reserved for the hub")
        seq, prev, time = _chain_fields(o, what=what)
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
            evidence=_freeze(evidence),
            envelope=raw,
            signer=node_key.key_id,
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
            "evidence": _thaw(evidence or {}),
        }
    )
    return payload


def sign_record(payload: bytes, key: SigningKey) -> bytes:
    """Sign a record payload; return the envelope bytes to store and send (checked first)."""
    env_bytes = dsse.sign(AUDIT_PAYLOAD_TYPE, payload, [key]).to_json()
    AuditRecord.from_envelope(env_bytes, key.public)  # refuse to emit a record nobody accepts
    return env_bytes


# --- hub events ------------------------------------------------------------------------------


def rotation_message(node_id: str, old_key: PublicKey, new_key: PublicKey) -> bytes:
    """The bytes a node's old key signs to hand its identity to ``new_key``."""
    return canonical_json(
        {
            "schema": ROTATION_SCHEMA,
            "node_id": node_id,
            "old_key_id": old_key.key_id,
            "new_key": new_key.b64,
        }
    )


_BODY_FIELDS: dict[HubEventKind, set[str]] = {
    HubEventKind.ENROLLMENT: {"node_id", "public_key", "key_id", "enrolled_at", "token_sha256"},
    HubEventKind.KEY_ROTATION: {
        "node_id",
        "old_key",
        "old_key_id",
        "new_key",
        "new_key_id",
        "signature",
    },
    HubEventKind.POLICY_PUBLICATION: {"name", "version", "digest"},
    HubEventKind.APPROVAL: {"digest", "role", "subject"},
}


def _check_body(kind: HubEventKind, body: Any, *, what: str) -> Mapping[str, Any]:
    o = _fields(body, _BODY_FIELDS[kind], set(), what=f"{what}: body")
    w = f"{what}: body"
    if kind is HubEventKind.ENROLLMENT:
        check_node_id(o["node_id"], what=f"{w}.node_id")
        key = PublicKey.from_b64(
            _str(o["public_key"], what=f"{w}.public_key"), what=f"{w}.public_key"
        )
        if key.key_id != o["key_id"]:
            raise FormatError(f"{w}.key_id does not match public_key")
        parse_time(o["enrolled_at"], what=f"{w}.enrolled_at")
        _hex64(o["token_sha256"], what=f"{w}.token_sha256")
    elif kind is HubEventKind.KEY_ROTATION:
        node_id = check_node_id(o["node_id"], what=f"{w}.node_id")
        old = PublicKey.from_b64(_str(o["old_key"], what=f"{w}.old_key"), what=f"{w}.old_key")
        new = PublicKey.from_b64(_str(o["new_key"], what=f"{w}.new_key"), what=f"{w}.new_key")
        if old.key_id != o["old_key_id"] or new.key_id != o["new_key_id"]:
            raise FormatError(f"{w}: a key id does not match its key")
        try:
            sig = base64.b64decode(_str(o["signature"], what=f"{w}.signature"), validate=True)
        except ValueError as exc:
            raise FormatError(f"{w}.signature: invalid base64") from exc
        try:
            old.verify(sig, rotation_message(node_id, old, new))
        except SignatureError as exc:
            raise SignatureError(f"{w}: the old key did not sign this rotation") from exc
    elif kind is HubEventKind.POLICY_PUBLICATION:
        _str(o["name"], what=f"{w}.name")
        _int(o["version"], what=f"{w}.version", minimum=1)
        _hex64(o["digest"], what=f"{w}.digest")
    else:
        _hex64(o["digest"], what=f"{w}.digest")
        _str(o["role"], what=f"{w}.role")
        _str(o["subject"], what=f"{w}.subject")
    return _freeze(o)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class HubEvent:
    """A verified hub-signed ledger event. Build only with :meth:`from_envelope`."""

    seq: int
    prev: Sha256
    time: datetime
    kind: HubEventKind
    body: Mapping[str, Any]
    envelope: bytes
    signer: KeyId

    node_id = HUB_NODE_ID

    @property
    def digest(self) -> Sha256:
        """Hex SHA-256 of the envelope bytes."""
        return envelope_digest(self.envelope)

    @classmethod
    def from_envelope(
        cls, envelope: dsse.Envelope | bytes, hub_key: PublicKey, *, what: str = "hub event"
    ) -> HubEvent:
        """Verify ``envelope`` under the hub key and parse it (see the module invariants)."""
        _, raw, obj = _open(envelope, hub_key, HUB_EVENT_PAYLOAD_TYPE, what=what)
        o = _fields(
            obj, {"schema", "node_id", "seq", "prev", "time", "kind", "body"}, set(), what=what
        )
        if o["schema"] != HUB_EVENT_SCHEMA:
            raise FormatError(f"{what}: schema is {o['schema']!r}, expected {HUB_EVENT_SCHEMA!r}")
        if o["node_id"] != HUB_NODE_ID:
            raise FormatError(f"{what}: node_id must be {HUB_NODE_ID!r}, got {o['node_id']!r}")
        seq, prev, time = _chain_fields(o, what=what)
        try:
            kind = HubEventKind(o["kind"])
        except ValueError as exc:
            raise FormatError(f"{what}: unknown hub event kind {o['kind']!r}") from exc
        body = _check_body(kind, o["body"], what=what)
        return cls(seq, prev, time, kind, body, raw, hub_key.key_id)


def build_hub_event(
    *, seq: int, prev: str, time: datetime, kind: HubEventKind | str, body: Mapping[str, Any]
) -> bytes:
    """The canonical JSON payload of a hub event."""
    return canonical_json(
        {
            "schema": HUB_EVENT_SCHEMA,
            "node_id": HUB_NODE_ID,
            "seq": seq,
            "prev": prev,
            "time": format_time(time),
            "kind": HubEventKind(kind).value,
            "body": _thaw(body),
        }
    )


def sign_hub_event(payload: bytes, hub_key: SigningKey) -> bytes:
    """Sign a hub event payload; return the envelope bytes (checked before returning)."""
    env_bytes = dsse.sign(HUB_EVENT_PAYLOAD_TYPE, payload, [hub_key]).to_json()
    HubEvent.from_envelope(env_bytes, hub_key.public)
    return env_bytes
