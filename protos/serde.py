"""Conversions between the shared wire types (:mod:`protos.types`) and generated messages.

The one serde both sides use: the hub's servicers build replies with the ``*_to_proto``
functions and :class:`protos.client.HubClient` reads them with the ``*_from_proto`` ones, so a
field is named, and a time formatted, in one place. Rules:

* envelope and note bytes pass through untouched, both ways;
* ``optional`` proto fields become ``None`` when unset, so "missing" never reads as 0 — and a
  field the shared type requires (an entry's ``seq``) is refused when missing
  (:class:`~trust.errors.FormatError`), never defaulted;
* times are RFC 3339 ``Z`` strings on the wire (:func:`trust.timeutil.format_time`) and
  timezone-aware datetimes everywhere else.
"""

from __future__ import annotations

from collections.abc import Iterable

from protos.types import (
    Ack,
    AppendResult,
    ApprovalReceipt,
    ApprovalRecord,
    ConsistencyProof,
    EnrollResult,
    EntriesPage,
    Entry,
    HeartbeatResult,
    InclusionProof,
    PolicyRecord,
    PublishResult,
    RootPublishResult,
)
from protos.warden.v1 import (
    approval_pb2,
    common_pb2,
    enrollment_pb2,
    ledger_pb2,
    policy_pb2,
    root_pb2,
)
from trust.canonical import Sha256
from trust.errors import FormatError
from trust.stream import NodeId
from trust.timeutil import format_time, parse_time

__all__ = [
    "append_result_from_proto",
    "append_result_to_proto",
    "approval_receipt_from_proto",
    "approval_receipt_to_proto",
    "approval_record_from_proto",
    "approval_record_to_proto",
    "checkpoint_to_proto",
    "consistency_proof_from_proto",
    "consistency_proof_to_proto",
    "enroll_result_from_proto",
    "entries_page_from_proto",
    "entries_page_to_proto",
    "entry_from_proto",
    "entry_to_proto",
    "heartbeat_result_from_proto",
    "heartbeat_result_to_proto",
    "inclusion_proof_from_proto",
    "inclusion_proof_to_proto",
    "policy_record_from_proto",
    "policy_record_to_proto",
    "publish_result_from_proto",
    "publish_result_to_proto",
    "root_chain_from_proto",
    "root_chain_to_proto",
    "root_publish_result_from_proto",
    "root_publish_result_to_proto",
]


# -- common ----------------------------------------------------------------------------------


def checkpoint_to_proto(note: bytes | None) -> common_pb2.Checkpoint:
    """A checkpoint message carrying the signed note verbatim (empty while the tree is)."""
    return common_pb2.Checkpoint(note=note or b"")


# -- ledger ----------------------------------------------------------------------------------


def append_result_to_proto(result: AppendResult) -> ledger_pb2.AppendResponse:
    """An Append reply: acks in request order and the covering checkpoint note."""
    return ledger_pb2.AppendResponse(
        acks=[ledger_pb2.AppendAck(index=a.index, duplicate=a.duplicate) for a in result.acks],
        checkpoint=checkpoint_to_proto(result.checkpoint),
    )


def append_result_from_proto(m: ledger_pb2.AppendResponse) -> AppendResult:
    """The :class:`AppendResult` of an Append reply."""
    return AppendResult(tuple(Ack(a.index, a.duplicate) for a in m.acks), m.checkpoint.note)


def entry_to_proto(entry: Entry) -> ledger_pb2.LedgerEntry:
    """A ledger entry message (envelope verbatim; ``kind`` derived from it)."""
    return ledger_pb2.LedgerEntry(
        index=entry.index,
        envelope=entry.envelope,
        kind=entry.kind,
        node_id=entry.node_id,
        seq=entry.seq,
        leaf_hash=entry.leaf_hash,
        chain_hash=entry.chain_hash,
        received_at=format_time(entry.received_at),
    )


def entry_from_proto(m: ledger_pb2.LedgerEntry) -> Entry:
    """The :class:`Entry` of a message; a missing ``seq`` or a bad time is a FormatError.

    The message's ``kind`` is not read: :attr:`Entry.kind` derives it from the envelope.
    """
    if not m.HasField("seq"):
        raise FormatError(f"ledger entry {m.index} from the hub carries no seq")
    return Entry(
        index=m.index,
        node_id=NodeId(m.node_id),
        seq=m.seq,
        envelope=m.envelope,
        leaf_hash=m.leaf_hash,
        chain_hash=m.chain_hash,
        received_at=parse_time(m.received_at, what=f"entry {m.index} received_at"),
    )


def entries_page_to_proto(
    entries: Iterable[Entry], ledger_size: int
) -> ledger_pb2.GetEntriesResponse:
    """A GetEntries reply: a page of entries and the ledger size."""
    return ledger_pb2.GetEntriesResponse(
        entries=[entry_to_proto(e) for e in entries], ledger_size=ledger_size
    )


def entries_page_from_proto(m: ledger_pb2.GetEntriesResponse) -> EntriesPage:
    """The :class:`EntriesPage` of a GetEntries reply."""
    return EntriesPage(tuple(entry_from_proto(e) for e in m.entries), m.ledger_size)


def inclusion_proof_to_proto(proof: InclusionProof) -> ledger_pb2.GetInclusionProofResponse:
    """A GetInclusionProof reply."""
    return ledger_pb2.GetInclusionProofResponse(
        index=proof.index, tree_size=proof.tree_size, leaf_hash=proof.leaf_hash,
        hashes=list(proof.hashes),
    )


def inclusion_proof_from_proto(m: ledger_pb2.GetInclusionProofResponse) -> InclusionProof:
    """The :class:`InclusionProof` of a GetInclusionProof reply."""
    return InclusionProof(m.index, m.tree_size, m.leaf_hash, tuple(m.hashes))


def consistency_proof_to_proto(
    proof: ConsistencyProof,
) -> ledger_pb2.GetConsistencyProofResponse:
    """A GetConsistencyProof reply."""
    return ledger_pb2.GetConsistencyProofResponse(
        old_size=proof.old_size, new_size=proof.new_size, hashes=list(proof.hashes)
    )


def consistency_proof_from_proto(m: ledger_pb2.GetConsistencyProofResponse) -> ConsistencyProof:
    """The :class:`ConsistencyProof` of a GetConsistencyProof reply."""
    return ConsistencyProof(m.old_size, m.new_size, tuple(m.hashes))


# -- enrollment ------------------------------------------------------------------------------


def enroll_result_from_proto(
    m: enrollment_pb2.EnrollResponse | enrollment_pb2.RotateKeyResponse,
) -> EnrollResult:
    """The :class:`EnrollResult` of an Enroll or RotateKey reply."""
    return EnrollResult(m.index, m.envelope, m.checkpoint.note)


def heartbeat_result_to_proto(result: HeartbeatResult) -> enrollment_pb2.HeartbeatResponse:
    """A Heartbeat reply (``latest_policy_version`` unset when there is none)."""
    resp = enrollment_pb2.HeartbeatResponse(hub_time=format_time(result.hub_time))
    if result.latest_policy_version is not None:
        resp.latest_policy_version = result.latest_policy_version
    return resp


def heartbeat_result_from_proto(m: enrollment_pb2.HeartbeatResponse) -> HeartbeatResult:
    """The :class:`HeartbeatResult` of a Heartbeat reply."""
    return HeartbeatResult(
        parse_time(m.hub_time, what="hub_time"),
        m.latest_policy_version if m.HasField("latest_policy_version") else None,
    )


# -- policy ----------------------------------------------------------------------------------


def publish_result_to_proto(result: PublishResult) -> policy_pb2.PublishResponse:
    """A Publish reply."""
    return policy_pb2.PublishResponse(name=result.name, version=result.version,
                                      revision=result.revision, digest=result.digest,
                                      index=result.index)


def publish_result_from_proto(m: policy_pb2.PublishResponse) -> PublishResult:
    """The :class:`PublishResult` of a Publish reply."""
    return PublishResult(m.name, m.version, m.revision, m.digest, m.index)


def policy_record_to_proto(record: PolicyRecord) -> policy_pb2.PolicyUpdate:
    """A stored bundle as sent by Get and Watch."""
    return policy_pb2.PolicyUpdate(
        name=record.name,
        version=record.version,
        revision=record.revision,
        envelope=record.envelope,
        published_at=format_time(record.published_at),
    )


def policy_record_from_proto(m: policy_pb2.PolicyUpdate) -> PolicyRecord:
    """The :class:`PolicyRecord` of a Get reply's bundle or a Watch update."""
    return PolicyRecord(m.name, m.version, m.revision, m.envelope,
                        parse_time(m.published_at, what=f"policy {m.name!r} published_at"))


# -- trust root ------------------------------------------------------------------------------


def root_publish_result_to_proto(result: RootPublishResult) -> root_pb2.PublishRootResponse:
    """A RootService Publish reply."""
    return root_pb2.PublishRootResponse(version=result.version, digest=result.digest,
                                        index=result.index)


def root_publish_result_from_proto(m: root_pb2.PublishRootResponse) -> RootPublishResult:
    """The :class:`RootPublishResult` of a RootService Publish reply."""
    return RootPublishResult(m.version, Sha256(m.digest), m.index)


def root_chain_to_proto(
    envelopes: Iterable[bytes], latest_version: int
) -> root_pb2.GetRootChainResponse:
    """A GetChain reply: the roots' envelope bytes verbatim, ascending, and the hub's current
    root version."""
    return root_pb2.GetRootChainResponse(envelopes=list(envelopes), latest_version=latest_version)


def root_chain_from_proto(m: root_pb2.GetRootChainResponse) -> tuple[bytes, ...]:
    """The envelopes of a GetChain reply, in the order sent (verified by the caller)."""
    return tuple(bytes(e) for e in m.envelopes)


# -- approvals -------------------------------------------------------------------------------


def approval_receipt_to_proto(receipt: ApprovalReceipt) -> approval_pb2.SubmitApprovalResponse:
    """A Submit reply."""
    return approval_pb2.SubmitApprovalResponse(approval_id=receipt.approval_id,
                                               role=receipt.role, index=receipt.index)


def approval_receipt_from_proto(m: approval_pb2.SubmitApprovalResponse) -> ApprovalReceipt:
    """The :class:`ApprovalReceipt` of a Submit reply."""
    return ApprovalReceipt(Sha256(m.approval_id), m.role, m.index)


def approval_record_to_proto(record: ApprovalRecord) -> approval_pb2.Approval:
    """A recorded approval (envelope verbatim)."""
    return approval_pb2.Approval(
        approval_id=record.approval_id,
        role=record.role,
        envelope=record.envelope,
        index=record.index,
        received_at=format_time(record.received_at),
    )


def approval_record_from_proto(m: approval_pb2.Approval) -> ApprovalRecord:
    """The :class:`ApprovalRecord` of a List reply's approval."""
    return ApprovalRecord(Sha256(m.approval_id), m.role, m.envelope, m.index,
                          parse_time(m.received_at, what=f"approval {m.index} received_at"))
