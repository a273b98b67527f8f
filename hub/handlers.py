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
* a key rotation is accepted only when signed by the node's current key (checked by the store)
  *and* by the new key (proof of possession, checked here).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from hub.ledger.store import ApprovalRecord, Entry, PolicyRecord, StoredCheckpoint
from hub.state import HubState
from hub.tls import hash_token
from trust import dsse
from trust.approval import Approval
from trust.errors import FormatError, NotFoundError, SignatureError, UsageError
from trust.keys import PublicKey
from trust.policy.bundle import DEFAULT_MAX_BYTES, PolicyBundle
from trust.record import check_node_id, rotation_message

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
    "rotate_key",
    "submit_approval",
    "watch_policies",
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


def append(state: HubState, node_id: str, envelopes: list[bytes]) -> Appended:
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


def entries(state: HubState, start: int, limit: int | None) -> tuple[list[Entry], int]:
    """A page of entries from ``start`` and the ledger size."""
    page = state.config.page_size if not limit else min(limit, state.config.page_size)
    size = state.store.size()
    if start > size:
        raise NotFoundError(f"start {start} is beyond the end of the ledger (size {size})")
    return state.store.entries(start, min(start + page, size)), size


def _latest_size(state: HubState) -> int:
    return checkpoint(state, None).size


def inclusion_proof(
    state: HubState, index: int, tree_size: int | None
) -> tuple[int, bytes, list[bytes]]:
    """(tree size, leaf hash, proof) for entry ``index``; default size: latest checkpoint."""
    size = _latest_size(state) if tree_size is None else tree_size
    if not 0 <= index < size:
        raise NotFoundError(f"entry {index} is not in a tree of size {size}")
    if size > state.store.size():
        raise NotFoundError(f"tree size {size} is beyond the ledger (size {state.store.size()})")
    return size, state.store.entry(index).leaf_hash, state.store.inclusion_proof(index, size)


def consistency_proof(
    state: HubState, old_size: int, new_size: int | None
) -> tuple[int, list[bytes]]:
    """(new size, proof) from ``old_size``; default new size: latest checkpoint."""
    new = _latest_size(state) if new_size is None else new_size
    if old_size < 1:
        raise UsageError("old_size must be ≥ 1 (every tree extends the empty one)")
    if not old_size <= new <= state.store.size():
        raise NotFoundError(
            f"need 1 ≤ old_size ({old_size}) ≤ new_size ({new}) ≤ ledger size "
            f"({state.store.size()})")
    return new, state.store.consistency_proof(old_size, new)


# -- enrollment ------------------------------------------------------------------------------


def enroll(state: HubState, node_id: str, public_key: bytes, token: str) -> Enrolled:
    """Enroll a node with a single-use token; the hub signs an enrollment entry."""
    nid = check_node_id(node_id, what="node_id")
    key = PublicKey(public_key) if len(public_key) == 32 else None
    if key is None:
        raise FormatError(f"public_key must be 32 raw ed25519 bytes, got {len(public_key)}")
    if not token:
        raise UsageError("an enrollment token is required",
                         hint="create one with 'warden hub token create --node NODE'")
    idx = state.store.register_node(nid, key, now=state.now(), token_sha256=hash_token(token),
                                    checkpoint=state.checkpoint_signer)
    return Enrolled(idx, state.store.entry(idx).envelope, state.checkpoint_covering(idx + 1))


def rotate_key(
    state: HubState, node_id: str, new_key_raw: bytes, old_sig: bytes, new_sig: bytes
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
    node_id: str,
    agent_version: str,
    policy_name: str | None,
    policy_version: int | None,
) -> int | None:
    """Record liveness; return the latest version of the node's policy (if any)."""
    state.store.record_heartbeat(node_id, now=state.now(), agent_version=agent_version,
                                 policy_name=policy_name, policy_version=policy_version)
    latest = state.store.latest_policy(policy_name)
    return None if latest is None else latest.version


# -- policy ----------------------------------------------------------------------------------


def publish(state: HubState, envelope: bytes) -> PolicyRecord:
    """Verify a bundle against the hub's root and store it (rollbacks refused)."""
    env = dsse.Envelope.from_json(envelope, what="bundle")
    # The agents' limit, not the transport's: a bundle every agent refuses is not published.
    bundle = PolicyBundle.from_envelope(env, state.root, now=state.now(),
                                        max_bytes=DEFAULT_MAX_BYTES)
    last = state.store.latest_policy(bundle.name)
    if last is not None:
        # Re-check with the stored version so the error says "rollback", then let the store
        # decide atomically (it also refuses a different bundle under an existing version).
        PolicyBundle.from_envelope(env, state.root, now=state.now(), last_version=last.version,
                                   max_bytes=DEFAULT_MAX_BYTES)
    record = state.store.add_policy(bundle.name, bundle.version, bundle.digest, envelope,
                                    now=state.now(), checkpoint=state.checkpoint_signer)
    state.checkpoint_covering(record.ledger_idx + 1)  # the latest checkpoint covers it
    state.feed.notify()
    return record


def get_policy(state: HubState, name: str | None, version: int | None) -> PolicyRecord:
    """The latest bundle of ``name`` (or of any name), or a given version."""
    if version is None:
        record = state.store.latest_policy(name)
        if record is None:
            raise NotFoundError(f"no policy bundle{' named ' + repr(name) if name else ''} "
                                "has been published")
        return record
    if name is None:
        latest = state.store.latest_policy(None)
        if latest is None:
            raise NotFoundError("no policy bundle has been published")
        name = latest.name
    return state.store.get_policy(name, version)


def _newer(state: HubState, name: str | None, sent: dict[str, int]) -> list[PolicyRecord]:
    if name is not None:
        latest = state.store.latest_policy(name)
        candidates = [] if latest is None else [latest]
    else:
        best: dict[str, PolicyRecord] = {}
        for rec in state.store.policies():
            if rec.name not in best or rec.version > best[rec.name].version:
                best[rec.name] = rec
        candidates = sorted(best.values(), key=lambda r: r.ledger_idx)
    return [r for r in candidates if r.version > sent.get(r.name, 0)]


def watch_policies(
    state: HubState, name: str | None, after_version: int | None, is_active: Callable[[], bool]
) -> Iterator[PolicyRecord]:
    """Yield the current bundle(s) newer than ``after_version``, then each new publication.

    Ends when the hub stops or ``is_active()`` turns false (the client went away).
    """
    sent: dict[str, int] = {}
    if after_version is not None and name is not None:
        sent[name] = after_version
    elif after_version is not None:
        sent = _AllNames(after_version)
    generation = state.feed.generation
    while not state.stopping.is_set() and is_active():
        for record in _newer(state, name, sent):
            sent[record.name] = record.version
            yield record
        generation = state.feed.wait(generation, timeout=1.0)


class _AllNames(dict[str, int]):
    """Watch of every name with one ``after_version``: missing names default to it."""

    def __init__(self, default: int) -> None:
        super().__init__()
        self._default = default

    def get(self, key: str, default: int | None = None) -> int:  # type: ignore[override]
        """The last version sent for ``key``, else the caller's ``after_version``."""
        return super().get(key, self._default)


# -- approvals -------------------------------------------------------------------------------


def submit_approval(state: HubState, envelope: bytes) -> tuple[Approval, ApprovalRecord]:
    """Verify an approval against the hub's root and record it."""
    approval = Approval.from_envelope(envelope, state.root)
    record = state.store.add_approval(approval.role, approval.subject, envelope, now=state.now(),
                                      checkpoint=state.checkpoint_signer)
    state.checkpoint_covering(record.ledger_idx + 1)
    return approval, record


def approvals(
    state: HubState, role: str | None, subject: str | None, limit: int | None
) -> list[ApprovalRecord]:
    """The most recent approvals (oldest first), optionally filtered."""
    n = state.config.page_size if not limit else min(limit, state.config.page_size)
    return state.store.approvals(subject=subject, role=role)[-n:]
