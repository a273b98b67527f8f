"""The hub's behaviour as plain functions: domain values in, domain values out.

Servicers (:mod:`hub.services`) only convert wire messages and call these; tests can call
them directly with a store. Each function takes the :class:`~hub.state.HubState` (store,
keys, root, config) and the already-authenticated caller's identity where it matters.

Invariants kept here (on top of the store's append rules):

* a batch is non-empty and at most ``max_batch`` records;
* every acknowledgement carries a checkpoint signed by the hub that covers the acked indexes;
  for hub events (enrollment, rotation, publication, approval) it is signed in the state
  change's own transaction, so a failure to sign rolls the change back instead of turning a
  committed change into an error reply (whose retry would then fail: token used, enrolled);
* a policy is stored only after :meth:`PolicyBundle.from_envelope` verified it against the
  hub's own copy of the trust root (threshold, digests, expiry) and it is not older than the
  stored version; an approval only after :meth:`Approval.from_envelope` verified it;
* a trust root is stored only after the hub's current root verified it as its successor
  (:meth:`TrustRoot.rotate`: exactly version N+1, a threshold of root N's and of its own root
  role, not expired) and only if its ``hub`` role still lists the hub's key (else no agent
  could verify the hub's checkpoints under it); once stored, the hub verifies policies and
  approvals under it (:meth:`HubState.current_root`, which also picks up rotations stored by
  other hub processes). Publishing the exact bytes of a stored root again answers with the
  stored record (same ledger index); other bytes under a stored version are a rollback;
* a key rotation is accepted only when signed by the node's current key (checked by the store)
  *and* by the new key (proof of possession, checked here);
* an enrollment is accepted only when signed by the enrolled key over node id, token digest
  and a time within ``clock_skew_s`` (:func:`protos.callsig.enroll_message`), checked before
  the store consumes the token, so a refused enrollment leaves the token usable;
* every string from a request is bounded (:mod:`hub.limits`) before it reaches the store or
  an error message, and errors show callers' values only through :func:`hub.limits.shown`.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.ledger.types import Entry, StoredApproval, StoredCheckpoint, StoredPolicy, StoredRoot
from hub.limits import bounded, bounded_optional, shown
from hub.state import HubState
from hub.tls import hash_token
from protos.callsig import enroll_message
from trust.approval import Approval
from trust.canonical import sha256_hex
from trust.errors import (
    EnrollmentError,
    FormatError,
    NotFoundError,
    SignatureError,
    TrustError,
    UsageError,
)
from trust.keys import PublicKey
from trust.policy.bundle import DEFAULT_MAX_BYTES, PolicyBundle
from trust.record import check_node_id, rotation_message
from trust.stream import NodeId

__all__ = [
    "Appended",
    "Enrolled",
    "append",
    "approvals",
    "checkpoint",
    "consistency_proof",
    "enroll",
    "entries",
    "get_policy",
    "heartbeat",
    "inclusion_proof",
    "publish",
    "publish_root",
    "root_chain",
    "rotate_key",
    "submit_approval",
]


@dataclass(frozen=True)
class Appended:
    """Indexes (request order), which positions were resends, and a covering checkpoint."""

    indexes: tuple[int, ...]
    duplicates: frozenset[int]
    checkpoint: StoredCheckpoint


@dataclass(frozen=True)
class Enrolled:
    """A hub-signed enrollment or key-rotation entry and a checkpoint covering it."""

    index: int
    envelope: bytes
    checkpoint: StoredCheckpoint


# -- ledger ----------------------------------------------------------------------------------


def append(state: HubState, node_id: NodeId, envelopes: list[bytes]) -> Appended:
    """Append a node's batch (all or nothing) and return acks with a covering checkpoint."""
    if not envelopes:
        raise UsageError("an Append batch must hold at least one record")
    if len(envelopes) > state.config.max_batch:
        raise UsageError(
            f"batch of {len(envelopes)} records exceeds the hub's max_batch "
            f"{state.config.max_batch}", hint="send smaller batches")
    if state.config.checkpoint_interval_ms == 0:
        # A checkpoint per append: signed in the append's own transaction (one commit).
        result = state.store.append_records(node_id, envelopes, now=state.now(),
                                            checkpoint=state.checkpoint_signer)
        cp = result.checkpoint
    else:
        result = state.store.append_records(node_id, envelopes, now=state.now())
        cp = None
    if cp is None or cp.size <= max(result.indexes):
        cp = state.checkpoint_covering(max(result.indexes) + 1)
    return Appended(tuple(result.indexes), frozenset(result.duplicates), cp)


def checkpoint(state: HubState, tree_size: int | None) -> StoredCheckpoint:
    """The latest checkpoint, or the stored one of exactly ``tree_size``."""
    if tree_size is not None:
        return state.store.checkpoint(tree_size)
    cp = state.store.latest_checkpoint()
    if cp is None:
        if state.store.size() > 0:
            return state.checkpoint_covering(state.store.size())
        raise NotFoundError("the ledger is empty: no checkpoint yet")
    return cp


# Bytes a GetEntries reply needs beside its envelopes (per-entry fields, the ledger size).
_REPLY_FRAMING = 64 * 1024


def entries(state: HubState, start: int, limit: int | None) -> tuple[list[Entry], int]:
    """A page of entries from ``start`` and the ledger size."""
    page = state.config.page_size if not limit else min(limit, state.config.page_size)
    size = state.store.size()
    if start > size:  # start == size is an empty page: "nothing new yet" for a follower
        raise NotFoundError(f"start {start} is beyond the ledger of size {size}")
    # A page must fit in one reply whatever page_bytes says: leave room for the framing.
    budget = min(state.config.page_bytes, state.config.max_message_bytes - _REPLY_FRAMING)
    return state.store.entries(start, min(start + page, size), max_bytes=max(budget, 1)), size


def _latest_size(state: HubState) -> int:
    return checkpoint(state, None).size


def inclusion_proof(
    state: HubState, index: int, tree_size: int | None
) -> tuple[int, bytes, list[bytes]]:
    """(tree size, leaf hash, proof) for entry ``index``; default size: latest checkpoint."""
    ledger = state.store.size()
    if tree_size is not None and tree_size > ledger:
        raise NotFoundError(f"tree_size {tree_size} is beyond the ledger of size {ledger}")
    if index >= ledger:
        raise NotFoundError(f"index {index} is beyond the ledger of size {ledger}")
    size = _latest_size(state) if tree_size is None else tree_size
    if not 0 <= index < size:
        if tree_size is None:
            raise NotFoundError(f"index {index} is not yet covered by a checkpoint (latest "
                                f"checkpoint size {size}, ledger size {ledger})",
                                hint="retry once the hub signs its next checkpoint")
        raise NotFoundError(f"index {index} is not in the tree of size {size}",
                            hint=f"ask for a tree_size above {index}")
    return size, state.store.entry(index).leaf_hash, state.store.inclusion_proof(index, size)


def consistency_proof(
    state: HubState, old_size: int, new_size: int | None
) -> tuple[int, list[bytes]]:
    """(new size, proof) from ``old_size``; default new size: latest checkpoint."""
    if old_size < 1:
        raise UsageError("old_size must be ≥ 1 (every tree extends the empty one)")
    ledger = state.store.size()
    if old_size > ledger:
        raise NotFoundError(f"old_size {old_size} is beyond the ledger of size {ledger}")
    if new_size is not None and new_size > ledger:
        raise NotFoundError(f"new_size {new_size} is beyond the ledger of size {ledger}")
    new = _latest_size(state) if new_size is None else new_size
    if old_size > new:
        if new_size is None:
            raise NotFoundError(f"old_size {old_size} is not yet covered by a checkpoint "
                                f"(latest checkpoint size {new}, ledger size {ledger})",
                                hint="retry once the hub signs its next checkpoint")
        raise UsageError(f"old_size {old_size} is larger than new_size {new}")
    return new, state.store.consistency_proof(old_size, new)


# -- enrollment ------------------------------------------------------------------------------


def enroll(
    state: HubState,
    node_id: str,
    public_key: bytes,
    token: str,
    *,
    signed_at: int,
    signature: bytes,
    agent_version: str = "",
) -> Enrolled:
    """Enroll a node with a single-use token; the hub signs an enrollment entry.

    ``signature`` is the enrolling key's proof of possession over
    :func:`protos.callsig.enroll_message` at unix time ``signed_at``. Everything is checked
    before the store sees the token, so any refusal leaves the token unused.
    """
    nid = check_node_id(bounded("node_id", node_id), what="node_id")
    bounded("token", token)
    bounded("agent_version", agent_version)  # not stored: bounded so it is never echoed
    key = PublicKey(public_key) if len(public_key) == 32 else None
    if key is None:
        raise FormatError(f"public_key must be 32 raw ed25519 bytes, got {len(public_key)}")
    if not token:
        raise UsageError("an enrollment token is required",
                         hint="create one with 'warden hub token create --node NODE'")
    if not signature:
        raise SignatureError(
            f"enrollment of {nid!r} carries no signature by the enrolling key (proof of "
            "possession)", hint="enroll with a current Warden client: it signs the request")
    skew = state.config.clock_skew_s
    drift = int(state.now().timestamp()) - signed_at
    if abs(drift) > skew:
        raise EnrollmentError(
            f"enrollment of {nid!r} was signed at {signed_at}, {drift} s away from the hub "
            f"clock (allowed ±{skew} s)", hint="synchronise the node's clock (NTP)")
    try:
        key.verify(signature, enroll_message(nid, key, token, signed_at))
    except SignatureError:
        raise SignatureError(
            f"enrollment of {nid!r}: the signature does not verify under the submitted public "
            f"key {key.key_id[:16]}… for this node, token and time (proof of possession)"
        ) from None
    idx = state.store.register_node(nid, key, now=state.now(), token_sha256=hash_token(token),
                                    checkpoint=state.checkpoint_signer)
    return Enrolled(idx, state.store.entry(idx).envelope, state.checkpoint_covering(idx + 1))


def rotate_key(
    state: HubState, node_id: NodeId, new_key_raw: bytes, old_sig: bytes, new_sig: bytes
) -> Enrolled:
    """Replace a node's key: signed by the current key (store) and the new key (here)."""
    if len(new_key_raw) != 32:
        raise FormatError(f"new_public_key must be 32 raw bytes, got {len(new_key_raw)}")
    new_key = PublicKey(new_key_raw)
    old_key = state.store.node_key(node_id)
    if new_key.key_id == old_key.key_id:
        raise UsageError("the new key is the current key")
    message = rotation_message(node_id, old_key, new_key)
    try:
        new_key.verify(new_sig, message)
    except SignatureError:
        raise SignatureError("key rotation: the new key did not sign the rotation statement "
                             "(proof of possession)") from None
    idx = state.store.rotate_node_key(node_id, new_key, old_sig, now=state.now(),
                                      checkpoint=state.checkpoint_signer)
    return Enrolled(idx, state.store.entry(idx).envelope, state.checkpoint_covering(idx + 1))


def heartbeat(
    state: HubState,
    node_id: NodeId,
    agent_version: str,
    policy_name: str | None,
    policy_version: int | None,
) -> int | None:
    """Record liveness; return the latest version of the node's policy (if any)."""
    bounded("agent_version", agent_version)
    bounded_optional("policy_name", policy_name)
    state.store.record_heartbeat(node_id, now=state.now(), agent_version=agent_version,
                                 policy_name=policy_name, policy_version=policy_version)
    latest = state.store.latest_policy(policy_name)
    return None if latest is None else latest.version


# -- policy ----------------------------------------------------------------------------------


def publish(state: HubState, envelope: bytes) -> StoredPolicy:
    """Verify a bundle against the hub's root and store it (rollbacks refused)."""
    # The agents' limit, not the transport's: a bundle every agent refuses is not published.
    root = state.current_root()
    bundle = PolicyBundle.from_envelope(envelope, root, now=state.now(),
                                        max_bytes=DEFAULT_MAX_BYTES)
    last = state.store.latest_policy(bundle.name)
    if last is not None:
        # Re-check with the stored version so the error says "rollback", then let the store
        # decide atomically (it also refuses a different bundle under an existing version).
        PolicyBundle.from_envelope(envelope, root, now=state.now(), last_version=last.version,
                                   max_bytes=DEFAULT_MAX_BYTES)
    record = state.store.add_policy(bundle.name, bundle.version, bundle.digest, envelope,
                                    now=state.now(), checkpoint=state.checkpoint_signer)
    state.checkpoint_covering(record.index + 1)  # the latest checkpoint covers it
    state.feed.notify()
    return record


def get_policy(state: HubState, name: str | None, version: int | None) -> StoredPolicy:
    """The latest bundle of ``name`` (or of any name), or a given version."""
    bounded_optional("name", name)
    if version is None:
        record = state.store.latest_policy(name)
        if record is None:
            raise NotFoundError(f"no policy bundle{' named ' + shown(name) if name else ''} "
                                "has been published")
        return record
    if name is None:
        latest = state.store.latest_policy(None)
        if latest is None:
            raise NotFoundError("no policy bundle has been published")
        name = latest.name
    return state.store.get_policy(name, version)


# -- trust root ------------------------------------------------------------------------------


def publish_root(state: HubState, envelope: bytes) -> StoredRoot:
    """Verify root N+1 from the hub's current root N, store it with its ledger event, and
    verify later publications and approvals under it (see the module invariants)."""
    if not envelope:
        raise UsageError("PublishRoot needs the envelope bytes of the new root (root.json)")
    digest = sha256_hex(envelope)
    with state.root_lock:
        current = state.current_root()
        # A retried publication of a stored root: the same answer, no second event.
        for stored in state.store.roots(0):
            if stored.digest == digest:
                return stored
        new = current.rotate(envelope, now=state.now(), what="published root")
        hub_id = state.hub_key.key_id
        if hub_id not in new.role("hub").keyids:
            raise TrustError(
                f"published root v{new.version} does not list this hub's key"
                f" {hub_id[:16]}… in its 'hub' role: agents would refuse every checkpoint the"
                " hub signs under it; nothing was published",
                hint="add the hub's key (hub.pub) to the new root's hub role and sign it again",
            )
        record = state.store.add_root(new.version, envelope, now=state.now(),
                                      checkpoint=state.checkpoint_signer)
        state.root = new
    state.checkpoint_covering(record.index + 1)  # the latest checkpoint covers it
    return record


def root_chain(state: HubState, after_version: int) -> tuple[list[StoredRoot], int]:
    """Every published root above ``after_version`` (ascending) and the current version."""
    current = state.current_root()
    return state.store.roots(after_version), current.version


# -- approvals -------------------------------------------------------------------------------


def submit_approval(state: HubState, envelope: bytes) -> tuple[Approval, StoredApproval]:
    """Verify an approval against the hub's root and record it."""
    approval = Approval.from_envelope(envelope, state.current_root())
    # Signed by an approver, but still a string on its way to storage and to every List.
    bounded("subject", approval.subject)
    record = state.store.add_approval(approval.role, approval.subject, envelope, now=state.now(),
                                      checkpoint=state.checkpoint_signer)
    state.checkpoint_covering(record.index + 1)
    return approval, record


def approvals(
    state: HubState, role: str | None, subject: str | None, limit: int | None
) -> list[StoredApproval]:
    """The most recent approvals (oldest first), optionally filtered."""
    bounded_optional("role", role)
    bounded_optional("subject", subject)
    n = state.config.page_size if not limit else min(limit, state.config.page_size)
    return state.store.approvals(subject=subject, role=role)[-n:]
