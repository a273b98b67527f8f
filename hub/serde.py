"""The hub-only conversions: the hub's domain values into the shared wire types.

Everything that touches generated messages is in :mod:`protos.serde`, which the client uses
too; this module only builds the :mod:`protos.types` values a servicer sends from what the
handlers return (which carry a parsed :class:`~hub.ledger.types.StoredCheckpoint` where the
wire carries its note bytes). Envelope and note bytes pass through untouched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.ledger.types import StoredApproval, StoredPolicy, StoredRoot
from protos.types import (
    Ack,
    AppendResult,
    ApprovalReceipt,
    EnrollResult,
    PublishResult,
    RootPublishResult,
)

if TYPE_CHECKING:
    from hub.handlers import Appended, Enrolled

__all__ = [
    "append_result",
    "approval_receipt",
    "enroll_result",
    "publish_result",
    "root_publish_result",
]


def append_result(appended: Appended) -> AppendResult:
    """The Append reply for ``appended``: acks in request order and the checkpoint note."""
    return AppendResult(
        tuple(Ack(i, pos in appended.duplicates) for pos, i in enumerate(appended.indexes)),
        appended.checkpoint.note,
    )


def enroll_result(enrolled: Enrolled) -> EnrollResult:
    """The Enroll / RotateKey reply: the hub-signed entry and the covering checkpoint note."""
    return EnrollResult(enrolled.index, enrolled.envelope, enrolled.checkpoint.note)


def publish_result(record: StoredPolicy) -> PublishResult:
    """The Publish reply for a stored bundle."""
    return PublishResult(record.name, record.version, record.revision, record.digest,
                         record.index)


def approval_receipt(record: StoredApproval) -> ApprovalReceipt:
    """The Submit reply for a recorded approval."""
    return ApprovalReceipt(record.approval_id, record.role, record.index)


def root_publish_result(record: StoredRoot) -> RootPublishResult:
    """The RootService Publish reply for a stored root."""
    return RootPublishResult(record.version, record.digest, record.index)
