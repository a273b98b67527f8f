"""Hub events: the hub's own signed stream in the ledger (node id :data:`HUB_NODE_ID`).

A **hub event** is a DSSE envelope of type :data:`HUB_EVENT_PAYLOAD_TYPE`, signed by the hub
key, whose payload is the canonical JSON of::

    {"schema": "warden.hub-event/v1", "node_id": "hub", "seq": 4, "prev": "<64 hex>",
     "time": "2026-11-26T11:00:00Z", "kind": "enrollment", "body": {...}}

``kind`` is ``enrollment``, ``key_rotation``, ``policy_publication``, ``approval`` or
``root_publication``; each has a fixed set of ``body`` fields. So the ledger itself carries
every node key ever trusted, every policy ever published and every trust-root rotation the
hub accepted (``root_publication``: the new root's ``version`` ≥ 2 and the hex SHA-256
``digest`` of its envelope bytes; the envelope itself is served by the hub's RootService).

Invariants:

* The chaining fields follow :mod:`trust.stream` (``seq`` from 1, ``prev`` the digest of the
  previous event's envelope bytes).
* A :class:`HubEvent` is only built by :meth:`HubEvent.from_envelope`, from the exact envelope
  bytes, after the hub key's signature verified and every field checked; building one
  directly raises :class:`~trust.errors.UnverifiedError`.
* A ``key_rotation`` event carries the old and new keys and the old key's signature over
  :func:`rotation_message`; the event does not build unless that signature verifies.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import KW_ONLY, InitVar, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

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
from trust.errors import FormatError, SignatureError
from trust.keys import KeyId, PublicKey, SigningKey
from trust.stream import (
    HUB_NODE_ID,
    check_chain_fields,
    check_node_id,
    envelope_digest,
    open_signed,
)
from trust.timeutil import format_time, parse_time

__all__ = [
    "HUB_EVENT_PAYLOAD_TYPE",
    "HUB_EVENT_SCHEMA",
    "ROTATION_SCHEMA",
    "HubEventKind",
    "HubEvent",
    "build_hub_event",
    "sign_hub_event",
    "rotation_message",
]

HUB_EVENT_PAYLOAD_TYPE = "application/vnd.warden.hub-event+json"
HUB_EVENT_SCHEMA = "warden.hub-event/v1"
ROTATION_SCHEMA = "warden.key-rotation/v1"


class HubEventKind(StrEnum):
    """What a hub event records."""

    ENROLLMENT = "enrollment"
    KEY_ROTATION = "key_rotation"
    POLICY_PUBLICATION = "policy_publication"
    APPROVAL = "approval"
    ROOT_PUBLICATION = "root_publication"


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


_BODY_FIELDS: dict[HubEventKind, tuple[str, ...]] = {
    HubEventKind.ENROLLMENT: ("enrolled_at", "key_id", "node_id", "public_key", "token_sha256"),
    HubEventKind.KEY_ROTATION: (
        "new_key",
        "new_key_id",
        "node_id",
        "old_key",
        "old_key_id",
        "signature",
    ),
    HubEventKind.POLICY_PUBLICATION: ("digest", "name", "version"),
    HubEventKind.APPROVAL: ("digest", "role", "subject"),
    HubEventKind.ROOT_PUBLICATION: ("digest", "version"),
}
_EVENT_FIELDS = ("body", "kind", "node_id", "prev", "schema", "seq", "time")


def _public_key(o: dict[str, Any], name: str, *, what: str) -> PublicKey:
    where = f"{what}.{name}"
    return PublicKey.from_b64(check_non_empty_str(o[name], what=where), what=where)


def _check_body(kind: HubEventKind, body: Any, *, what: str) -> Mapping[str, Any]:
    w = f"{what}: body"
    o = check_fields(body, _BODY_FIELDS[kind], what=w)
    if kind is HubEventKind.ENROLLMENT:
        check_node_id(o["node_id"], what=f"{w}.node_id")
        if _public_key(o, "public_key", what=w).key_id != o["key_id"]:
            raise FormatError(f"{w}.key_id does not match public_key")
        parse_time(o["enrolled_at"], what=f"{w}.enrolled_at")
        check_hex64(o["token_sha256"], what=f"{w}.token_sha256")
    elif kind is HubEventKind.KEY_ROTATION:
        node_id = check_node_id(o["node_id"], what=f"{w}.node_id")
        old = _public_key(o, "old_key", what=w)
        new = _public_key(o, "new_key", what=w)
        if old.key_id != o["old_key_id"] or new.key_id != o["new_key_id"]:
            raise FormatError(f"{w}: a key id does not match its key")
        try:
            sig = base64.b64decode(
                check_non_empty_str(o["signature"], what=f"{w}.signature"), validate=True
            )
        except ValueError as exc:
            raise FormatError(f"{w}.signature: invalid base64") from exc
        try:
            old.verify(sig, rotation_message(node_id, old, new))
        except SignatureError as exc:
            raise SignatureError(f"{w}: the old key did not sign this rotation") from exc
    elif kind is HubEventKind.POLICY_PUBLICATION:
        check_non_empty_str(o["name"], what=f"{w}.name")
        check_int(o["version"], what=f"{w}.version", minimum=1)
        check_hex64(o["digest"], what=f"{w}.digest")
    elif kind is HubEventKind.ROOT_PUBLICATION:
        # Version 1 is pinned out of band; only a rotation (2 and up) is ever published.
        check_int(o["version"], what=f"{w}.version", minimum=2)
        check_hex64(o["digest"], what=f"{w}.digest")
    else:
        check_hex64(o["digest"], what=f"{w}.digest")
        check_non_empty_str(o["role"], what=f"{w}.role")
        check_non_empty_str(o["subject"], what=f"{w}.subject")
    return freeze(o)  # type: ignore[no-any-return]


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
    _: KW_ONLY
    _token: InitVar[object] = None

    node_id: ClassVar[str] = HUB_NODE_ID

    def __post_init__(self, _token: object) -> None:
        require_token(_token, type(self), "HubEvent.from_envelope")

    @property
    def digest(self) -> Sha256:
        """Hex SHA-256 of the envelope bytes."""
        return envelope_digest(self.envelope)

    @classmethod
    def from_envelope(cls, data: bytes, hub_key: PublicKey, *, what: str = "hub event") -> HubEvent:
        """Verify the exact envelope bytes ``data`` under the hub key and parse them (see the
        module invariants). Anything but ``bytes`` is a :class:`FormatError`."""
        obj = open_signed(data, hub_key, HUB_EVENT_PAYLOAD_TYPE, what=what)
        o = check_fields(obj, _EVENT_FIELDS, what=what)
        check_schema(o["schema"], HUB_EVENT_SCHEMA, what=what)
        if o["node_id"] != HUB_NODE_ID:
            raise FormatError(f"{what}: node_id must be {HUB_NODE_ID!r}, got {o['node_id']!r}")
        seq, prev, time = check_chain_fields(o, what=what)
        try:
            kind = HubEventKind(o["kind"])
        except ValueError as exc:
            raise FormatError(f"{what}: unknown hub event kind {o['kind']!r}") from exc
        body = _check_body(kind, o["body"], what=what)
        return cls(seq, prev, time, kind, body, data, hub_key.key_id, _token=TOKEN)


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
            "body": thaw(body),
        }
    )


def sign_hub_event(payload: bytes, hub_key: SigningKey) -> bytes:
    """Sign a hub event payload; return the envelope bytes (checked before returning)."""
    env_bytes = dsse.sign(HUB_EVENT_PAYLOAD_TYPE, payload, [hub_key]).to_json()
    HubEvent.from_envelope(env_bytes, hub_key.public)
    return env_bytes
