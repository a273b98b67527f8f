"""Hub events sign their covering checkpoint in their own transaction (SQLite and PG)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta

import pytest

from hub.ledger.store import CheckpointSigner, LedgerStore
from tests.sim import NOW, SimNode
from trust import keys
from trust.errors import FormatError, NotFoundError
from trust.record import rotation_message

Enroll = Callable[[str], SimNode]
TOKEN = hashlib.sha256(b"token").hexdigest()


def _signer(hub_key: keys.SigningKey, origin: str = "test.example/hub") -> CheckpointSigner:
    return CheckpointSigner(origin, origin, hub_key)


def test_enrollment_commits_with_its_checkpoint_or_not_at_all(
    store: LedgerStore, hub_key: keys.SigningKey
) -> None:
    key = keys.generate()
    store.create_token("n1", TOKEN, NOW + timedelta(hours=1), now=NOW)
    with pytest.raises(FormatError):  # cannot sign: the enrollment and the token roll back
        store.register_node("n1", key.public, now=NOW, token_sha256=TOKEN,
                            checkpoint=_signer(hub_key, "my hub"))
    with pytest.raises(NotFoundError):
        store.node_key("n1")
    assert store.size() == 0 and store.latest_checkpoint() is None
    idx = store.register_node("n1", key.public, now=NOW, token_sha256=TOKEN,
                              checkpoint=_signer(hub_key))  # the retry succeeds
    cp = store.latest_checkpoint()
    assert cp is not None and cp.size == idx + 1 == store.size()


def test_rotation_policy_approval_sign_their_checkpoint(
    store: LedgerStore, enrolled: Enroll, hub_key: keys.SigningKey
) -> None:
    node = enrolled("n1")
    new = keys.generate()
    sig = node.key.sign(rotation_message("n1", node.key.public, new.public))
    with pytest.raises(FormatError):
        store.rotate_node_key("n1", new.public, sig, now=NOW,
                              checkpoint=_signer(hub_key, "bad origin"))
    assert store.node_key("n1") == node.key.public
    idx = store.rotate_node_key("n1", new.public, sig, now=NOW, checkpoint=_signer(hub_key))
    assert store.checkpoint_at_least(idx + 1) is not None
    with pytest.raises(FormatError):
        store.add_policy("p", 1, "ab" * 32, b"{}", now=NOW, checkpoint=_signer(hub_key, "a b"))
    assert store.latest_policy("p") is None
    rec = store.add_policy("p", 1, "ab" * 32, b"{}", now=NOW, checkpoint=_signer(hub_key))
    assert store.checkpoint_at_least(rec.index + 1) is not None
    with pytest.raises(FormatError):
        store.add_approval("risk", "s", b"{}", now=NOW, checkpoint=_signer(hub_key, "a b"))
    assert store.approvals() == []
    app = store.add_approval("risk", "s", b"{}", now=NOW, checkpoint=_signer(hub_key))
    assert store.checkpoint_at_least(app.index + 1) is not None
