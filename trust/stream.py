"""What audit records and hub events share: node ids, the per-stream chain, opening envelopes.

Every node writes one stream of records, and the hub one stream of events (node id
:data:`HUB_NODE_ID`). Invariants:

* ``seq`` starts at 1; ``prev`` is the lowercase hex SHA-256 of the same stream's previous
  envelope bytes (exactly as stored), or :data:`GENESIS_PREV` (64 zeros) for ``seq`` 1;
  ``time`` is RFC 3339 UTC with a ``Z``.
* :func:`open_signed` verifies the signature over the exact envelope bytes it is given before
  it reads the payload, and the payload must be canonical JSON
  (:func:`trust._internal.payload.load_canonical_object`).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, NewType

from trust import dsse
from trust._internal.fields import check_hex64, check_int
from trust._internal.payload import load_canonical_object
from trust.canonical import Sha256, sha256_hex
from trust.errors import FormatError
from trust.keys import PublicKey
from trust.timeutil import parse_time

__all__ = [
    "GENESIS_PREV",
    "HUB_NODE_ID",
    "NodeId",
    "check_chain_fields",
    "check_node_id",
    "envelope_digest",
    "open_signed",
]

GENESIS_PREV = Sha256("0" * 64)

NodeId = NewType("NodeId", str)
"""A node's name: 1–128 characters of ``[A-Za-z0-9._-]``, starting alphanumeric."""
HUB_NODE_ID = NodeId("hub")
"""The stream of hub events: a node id no node may enroll under."""

_NODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def envelope_digest(envelope_bytes: bytes) -> Sha256:
    """The digest a successor's ``prev`` names: hex SHA-256 of the exact envelope bytes."""
    return sha256_hex(envelope_bytes)


def check_node_id(value: Any, *, what: str = "node_id") -> NodeId:
    """Validate a node id (also used by the hub for ids arriving from the network)."""
    if not isinstance(value, str) or not _NODE_ID.fullmatch(value):
        raise FormatError(f"{what} {value!r} must match [A-Za-z0-9][A-Za-z0-9._-]{{0,127}}")
    return NodeId(value)


def check_chain_fields(o: dict[str, Any], *, what: str) -> tuple[int, Sha256, datetime]:
    """``(seq, prev, time)`` of a record or event payload, checked as the invariants say."""
    seq = check_int(o["seq"], what=f"{what}: seq", minimum=1)
    prev = check_hex64(o["prev"], what=f"{what}: prev")
    if seq == 1 and prev != GENESIS_PREV:
        raise FormatError(f"{what}: seq 1 must have prev = 64 zeros, got {prev[:16]}…")
    time = parse_time(o["time"], what=f"{what}: time")
    if not isinstance(o["time"], str) or not o["time"].endswith("Z"):
        raise FormatError(f"{what}: time must be UTC with a 'Z' suffix, got {o['time']!r}")
    return seq, prev, time


def open_signed(data: bytes, key: PublicKey, payload_type: str, *, what: str) -> dict[str, Any]:
    """Verify ``data`` (exact envelope bytes) is signed by ``key``; its canonical payload.

    Raises :class:`FormatError` for anything but bytes, a malformed envelope, another payload
    type or a non-canonical payload, and :class:`SignatureError` if ``key`` did not sign it.
    """
    env = dsse.from_bytes(data, what=what)
    dsse.verify(env, {key.key_id: key}, 1, payload_type=payload_type, what=what)
    return load_canonical_object(env.payload, what=what)
