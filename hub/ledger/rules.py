"""The backend-neutral rules of a ledger store: bounds, argument checks, refusals, hub-event bodies.

Both stores (:mod:`hub.ledger.sql` and :mod:`hub.ledger.memory`) call these, so they refuse
alike — the same typed error, the same message — and sign the same hub-event bodies. Nothing
here reads or writes storage: each function gets the stored facts it judges from its caller,
which holds the write lock when the answer must not change under it.

Invariants:

* Numbers from the wire are uint64; the SQL columns are signed 64-bit. A value above
  :data:`MAX_INT` is not in either store (reads say :class:`NotFoundError`) and is never
  written.
* Every check raises a typed error from :mod:`trust.errors` / :mod:`hub.ledger.errors` or
  returns normally; none returns a flag a caller could forget to test (fail closed).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from hub.ledger.checked import CheckedRecord, KeyRing
from hub.ledger.errors import (
    NodeNotEnrolledError,
    TokenExpiredError,
    TokenNodeMismatchError,
    TokenUnknownError,
    TokenUsedError,
)
from hub.ledger.history import Equivocated
from hub.ledger.types import MAX_BATCH, CheckpointSigner, StoredCheckpoint
from trust.canonical import Sha256, sha256_hex
from trust.checkpoint import Checkpoint, sign_checkpoint
from trust.errors import (
    AccessDeniedError,
    EquivocationError,
    FormatError,
    LedgerError,
    RecordTooLargeError,
    RollbackError,
    SignatureError,
    UsageError,
)
from trust.keys import PublicKey, SigningKey
from trust.record import (
    GENESIS_PREV,
    HUB_NODE_ID,
    HubEventKind,
    build_hub_event,
    check_node_id,
    rotation_message,
    sign_hub_event,
)
from trust.stream import NodeId
from trust.timeutil import format_time

__all__ = [
    "ACTIVE",
    "MAX_INT",
    "StoredToken",
    "check_append_batch",
    "check_enroll_args",
    "check_approval_args",
    "check_heartbeat_version",
    "check_hex",
    "check_hub_keys",
    "check_key_unchanged",
    "check_policy_args",
    "check_root_args",
    "check_rotation",
    "check_token_args",
    "enrollment_body",
    "equivocation_error",
    "hub_event_record",
    "new_checkpoint",
    "not_enrolled_error",
    "refuse_token",
    "require_hub_key",
    "require_hub_public",
    "rollback_error",
    "root_rollback_error",
    "rotation_body",
]

ACTIVE = "active"
"""The status of a node that may authenticate and append."""
MAX_INT = (1 << 63) - 1
"""The largest value a BIGINT column holds; wire fields are uint64, so a larger index, size
or version is simply not in the store (and may not be written to it)."""


def check_hex(value: str, what: str) -> None:
    """Refuse anything but a lowercase hex SHA-256 (:class:`FormatError` naming ``what``)."""
    if not isinstance(value, str) or len(value) != 64 or value.strip("0123456789abcdef"):
        raise FormatError(f"{what} must be 64 lowercase hex characters")


def check_hub_keys(hub_key: SigningKey | None, hub_public: PublicKey | None) -> PublicKey | None:
    """The hub's public key from the keys a store was opened with; :class:`UsageError` if
    both are given and differ."""
    if hub_key and hub_public and hub_key.public != hub_public:
        raise UsageError("hub_key and hub_public_key are different keys")
    return hub_public or (hub_key.public if hub_key else None)


def require_hub_key(key: SigningKey | None) -> SigningKey:
    """The hub's signing key; :class:`UsageError` if the store was opened without it."""
    if key is None:
        raise UsageError("this ledger store was opened without the hub signing key")
    return key


def require_hub_public(public: PublicKey | None) -> PublicKey:
    """The hub's public key; :class:`UsageError` if the store was opened without it."""
    if public is None:
        raise UsageError("this ledger store was opened without the hub key")
    return public


# --- log ---------------------------------------------------------------------------------------


def check_append_batch(
    node_id: NodeId, envelopes: Sequence[bytes], max_record_bytes: int | None
) -> None:
    """A node's append batch has a valid shape before anything is parsed: a valid node id
    that is not the hub's, 1..:data:`MAX_BATCH` records, each at most ``max_record_bytes``."""
    check_node_id(node_id)
    if not envelopes:
        raise UsageError("an append batch must hold at least one record")
    if len(envelopes) > MAX_BATCH:
        raise UsageError(
            f"an append batch holds at most {MAX_BATCH} records, got {len(envelopes)}"
        )
    if node_id == HUB_NODE_ID:
        raise AccessDeniedError(f"node id {HUB_NODE_ID!r} is reserved for the hub's own events")
    if max_record_bytes is None:
        return
    for i, env in enumerate(envelopes):
        if len(env) > max_record_bytes:
            raise RecordTooLargeError(
                f"record {i} of the batch is {len(env)} bytes; this hub accepts records of"
                f" at most {max_record_bytes} bytes (max_record_bytes); nothing was stored",
                hint="keep large evidence out of the record: sign its digest instead",
            )


def check_key_unchanged(node_id: NodeId, current_key_id: str | None, ring: KeyRing) -> None:
    """Under the write lock: the ring a batch was verified with is still the node's (a hub
    event's ring is the hub key, which has no stored status)."""
    if node_id != HUB_NODE_ID and current_key_id != ring.current.key_id:
        raise SignatureError(
            f"node {node_id}'s key changed while the batch was verified; resend it"
        )


def equivocation_error(exc: Equivocated) -> EquivocationError:
    """The error an append reports once the equivocation ``exc`` was flagged."""
    return EquivocationError(
        f"node {exc.node_id} signed two different records with seq {exc.seq}"
        f" (stored {exc.existing[:16]}…, offered {sha256_hex(exc.offered)[:16]}…);"
        " flagged as equivocation"
    )


def hub_event_record(
    key: SigningKey,
    head: tuple[int, Sha256],
    kind: HubEventKind,
    body: dict[str, Any],
    now: datetime,
) -> CheckedRecord:
    """The hub event ``kind`` with ``body``, signed by ``key``, following the hub stream's
    ``head`` (seq, digest) — built under the write lock, so ``head`` is current."""
    seq, prev = head
    payload = build_hub_event(seq=seq + 1, prev=prev, time=now, kind=kind, body=body)
    return CheckedRecord.signed_here(
        HUB_NODE_ID, seq + 1, prev, sign_hub_event(payload, key), key.public.key_id
    )


# --- checkpoints -------------------------------------------------------------------------------


def new_checkpoint(
    signer: CheckpointSigner,
    latest: StoredCheckpoint | None,
    size: int,
    root: bytes,
    now: datetime,
) -> StoredCheckpoint:
    """A checkpoint of ``size`` and ``root`` signed by ``signer`` (the caller stores it).

    :class:`LedgerError` if ``latest`` was signed under another origin: a ledger keeps one
    origin for life.
    """
    cp = Checkpoint(signer.origin, size, root)
    note = sign_checkpoint(cp, signer.key_name, signer.key)  # refuses a malformed origin
    if latest is not None and latest.origin != signer.origin:
        raise LedgerError(
            f"this ledger's checkpoints are signed under origin {latest.origin!r}; refusing"
            f" to sign one under {signer.origin!r} (a ledger keeps one origin for life)"
        )
    return StoredCheckpoint(cp, note, now)


# --- nodes -------------------------------------------------------------------------------------


class StoredToken(Protocol):
    """What :func:`refuse_token` reads of a stored enrollment token (a row or a record)."""

    @property
    def node_id(self) -> str: ...
    @property
    def used_at(self) -> datetime | None: ...
    @property
    def expires_at(self) -> datetime: ...


_T = TypeVar("_T", bound=StoredToken)


def check_token_args(
    node_id: NodeId, token_sha256: str, expires_at: datetime, now: datetime
) -> None:
    """A token may be created for ``node_id`` (not the hub's), as a hex hash, expiring later."""
    check_node_id(node_id)
    if node_id == HUB_NODE_ID:
        raise UsageError(f"node id {HUB_NODE_ID!r} is reserved for the hub's own events")
    check_hex(token_sha256, "token_sha256")
    if expires_at <= now:
        raise UsageError("an enrollment token must expire in the future")


def refuse_token(token: _T | None, node_id: NodeId, now: datetime | None) -> _T:
    """Raise the reason ``token`` cannot enroll ``node_id`` at ``now``; return it if it can.

    ``now=None`` means the store already found it unusable (a conditional UPDATE matched
    nothing): if no other reason applies, it expired.
    """
    if token is None:
        raise TokenUnknownError("enrollment token is not known to this hub")
    if token.used_at is not None:
        raise TokenUsedError(
            f"enrollment token was already used at {format_time(token.used_at)}",
            hint="tokens are single use; create a new one with 'warden hub token create'",
        )
    if token.node_id != node_id:
        raise TokenNodeMismatchError(
            f"enrollment token was issued for node {token.node_id!r}, not {node_id!r}"
        )
    if now is None or token.expires_at <= now:
        raise TokenExpiredError(
            f"enrollment token expired at {format_time(token.expires_at)}",
            hint="create a new one with 'warden hub token create'",
        )
    return token


def check_enroll_args(node_id: NodeId) -> None:
    """``node_id`` may be enrolled (a valid id that is not the hub's)."""
    check_node_id(node_id)
    if node_id == HUB_NODE_ID:
        raise UsageError(f"node id {HUB_NODE_ID!r} is reserved for the hub")


def not_enrolled_error(node_id: NodeId) -> NodeNotEnrolledError:
    """The refusal of a node that is not enrolled, or not active, when it appends."""
    return NodeNotEnrolledError(
        f"node {node_id!r} is not enrolled",
        hint="enroll it with a token from 'warden hub token create'",
    )


def enrollment_body(
    node_id: NodeId, public_key: PublicKey, now: datetime, token_sha256: str | None
) -> dict[str, Any]:
    """The body of the ``enrollment`` hub event of ``node_id``."""
    return {
        "node_id": node_id,
        "public_key": public_key.b64,
        "key_id": public_key.key_id,
        "enrolled_at": format_time(now),
        "token_sha256": token_sha256 or GENESIS_PREV,
    }


def check_rotation(
    node_id: NodeId, old: PublicKey | None, new_key: PublicKey, used_before: bool, signature: bytes
) -> PublicKey:
    """The node's current key ``old`` (``None``: not enrolled or not active), if ``new_key``
    may replace it: a key never held before (``used_before``), with ``signature`` by ``old``
    over :func:`~trust.record.rotation_message`."""
    if old is None:
        raise NodeNotEnrolledError(f"node {node_id!r} is not enrolled")
    if old == new_key:
        raise UsageError(f"node {node_id!r} already uses key {new_key.key_id[:16]}…")
    if used_before:
        raise UsageError(f"node {node_id!r} already used key {new_key.key_id[:16]}…")
    try:
        old.verify(signature, rotation_message(node_id, old, new_key))
    except SignatureError as exc:
        raise SignatureError(
            f"key rotation for node {node_id!r} is not signed by its current key"
        ) from exc
    return old


def rotation_body(
    node_id: NodeId, old: PublicKey, new_key: PublicKey, signature: bytes
) -> dict[str, Any]:
    """The body of the ``key_rotation`` hub event of ``node_id``."""
    return {
        "node_id": node_id,
        "old_key": old.b64,
        "old_key_id": old.key_id,
        "new_key": new_key.b64,
        "new_key_id": new_key.key_id,
        "signature": base64.b64encode(signature).decode("ascii"),
    }


# --- policies and heartbeats -------------------------------------------------------------------


def check_policy_args(name: str, version: int, digest: str) -> None:
    """A policy publication names a bundle, a version ≥ 1 and a hex digest."""
    check_hex(digest, "policy digest")
    if not name or version < 1:
        raise UsageError(
            f"policy name must be non-empty and version ≥ 1 (got {name!r} {version})"
        )


def rollback_error(name: str, version: int, latest_version: int) -> RollbackError:
    """The refusal of ``version`` of ``name`` at or below the published ``latest_version``."""
    return RollbackError(
        f"policy {name!r} version {version} is not newer than the published"
        f" version {latest_version}",
        hint="bump the bundle's version and sign it again",
    )


def check_root_args(version: int, envelope: bytes) -> None:
    """A root publication is a rotation (version 2..:data:`MAX_INT`) with envelope bytes."""
    if not 2 <= version <= MAX_INT:
        raise UsageError(f"a published trust root has a version from 2 to {MAX_INT} (version 1"
                         f" is pinned, never published), got {version}")
    if not envelope:
        raise UsageError("a published trust root needs its envelope bytes")


def root_rollback_error(version: int, latest_version: int, same_version: bool) -> RollbackError:
    """The refusal of root ``version`` when the store already holds ``latest_version``
    (``same_version``: that very version, with other bytes)."""
    if same_version:
        return RollbackError(
            f"trust root version {version} is already published, with other bytes; a version"
            " is published once",
            hint=f"rotate to version {latest_version + 1} instead",
        )
    return RollbackError(
        f"trust root version {version} is not newer than the published version"
        f" {latest_version}",
        hint=f"rotate to version {latest_version + 1}",
    )


def check_approval_args(role: str, subject: str) -> None:
    """An approval names a role and a subject."""
    if not role or not subject:
        raise UsageError("an approval needs a role and a subject")


def check_heartbeat_version(policy_version: int | None) -> None:
    """A heartbeat's policy version fits the store (0..:data:`MAX_INT`)."""
    if policy_version is not None and not 0 <= policy_version <= MAX_INT:
        raise UsageError(f"heartbeat policy_version {policy_version} is out of range"
                         f" (at most {MAX_INT})")
