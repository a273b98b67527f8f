"""Conversions between the wire messages (``*_pb2``) and the hub's domain values.

The only hub module besides the servicers that touches generated types. Rules:

* envelope and note bytes pass through untouched, both ways;
* ``optional`` proto fields become ``None`` when unset, so "missing" never reads as 0;
* request fields that are not signed (node ids, sizes) are checked here or by the handlers,
  never trusted because they arrived.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence

from hub.ledger.store import ApprovalRecord, Entry, PolicyRecord
from protos.warden.v1 import common_pb2, ledger_pb2, policy_pb2
from protos.warden.v1.approval_pb2 import Approval as ApprovalMsg
from trust.canonical import sha256_hex
from trust.record import HUB_NODE_ID
from trust.timeutil import format_time

__all__ = [
    "approval_to_proto",
    "checkpoint_to_proto",
    "entries_to_proto",
    "entry_kind",
    "entry_to_proto",
    "policy_to_proto",
    "revision_of",
]


def checkpoint_to_proto(note: bytes | None) -> common_pb2.Checkpoint:
    """A checkpoint message carrying the signed note verbatim (empty while the tree is)."""
    return common_pb2.Checkpoint(note=note or b"")


def entry_kind(entry: Entry) -> str:
    """``audit`` for node records, else the hub event's kind (a display label only).

    Read from the payload without verifying it: clients verify envelopes themselves, and this
    label is a convenience for filtering, never a basis for trust.
    """
    if entry.node_id != HUB_NODE_ID:
        return "audit"
    try:
        outer = json.loads(entry.envelope)
        payload = json.loads(base64.b64decode(outer["payload"]))
        return str(payload.get("kind", "hub"))
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        return "hub"


def entry_to_proto(entry: Entry) -> ledger_pb2.LedgerEntry:
    """A ledger entry message (envelope verbatim)."""
    return ledger_pb2.LedgerEntry(
        index=entry.idx,
        envelope=entry.envelope,
        kind=entry_kind(entry),
        node_id=entry.node_id,
        seq=entry.seq,
        leaf_hash=entry.leaf_hash,
        chain_hash=entry.chain_hash,
        received_at=format_time(entry.received_at),
    )


def entries_to_proto(entries: Sequence[Entry], ledger_size: int) -> ledger_pb2.GetEntriesResponse:
    """A page of entries."""
    return ledger_pb2.GetEntriesResponse(
        entries=[entry_to_proto(e) for e in entries], ledger_size=ledger_size
    )


def policy_to_proto(record: PolicyRecord) -> policy_pb2.PolicyUpdate:
    """A stored bundle as sent by Get and Watch."""
    return policy_pb2.PolicyUpdate(
        name=record.name,
        version=record.version,
        revision=revision_of(record),
        envelope=record.envelope,
        published_at=format_time(record.published_at),
    )


def revision_of(record: PolicyRecord) -> str:
    """The ETag-like revision of a stored bundle: name, version and payload digest."""
    return f"{record.name}:{record.version}:{record.digest[:16]}"


def approval_to_proto(record: ApprovalRecord) -> ApprovalMsg:
    """A stored approval (envelope verbatim); its id is the SHA-256 of the envelope bytes."""
    return ApprovalMsg(
        approval_id=sha256_hex(record.envelope),
        role=record.role,
        envelope=record.envelope,
        index=record.ledger_idx,
        received_at=format_time(record.created_at),
    )
