"""RootService: compliance publishes root N+1, the hub proves it from root N before storing it,
records it in the ledger, verifies later publications under it (also after a restart and in
another hub process on the same database), and serves the chain agents walk."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from hub.config import Role
from hub.server import RunningHub
from hub.state import HubState
from tests.sim import SimNode
from trust import dsse, keys
from trust.approval import APPROVAL_PAYLOAD_TYPE, build_approval
from trust.canonical import sha256_hex
from trust.errors import (
    AccessDeniedError,
    ConfigError,
    ExpiredError,
    RollbackError,
    SignatureError,
    ThresholdError,
    TrustError,
)
from trust.hub_checkpoint import verify_hub_checkpoint
from trust.keys import SigningKey
from trust.merkle import leaf_hash, verify_inclusion
from trust.record import HubEvent, HubEventKind
from trust.root import Role as RootRole
from trust.root import RootMetadata, TrustRoot
from trust.timeutil import format_time, utcnow

from .harness import (
    HubWorld,
    bundle,
    enroll,
    make_world,
    node_client,
    operator,
    running_hub,
    warden_process,
)


@pytest.fixture
def world(tmp_path: Path) -> HubWorld:
    """A hub world that verifies records in-process (these tests start several hubs)."""
    return make_world(tmp_path, verify_workers=0)


@dataclass
class Keys:
    """The keys of one root version (the hub key is the world's, unless a test drops it)."""

    root: SigningKey = field(default_factory=keys.generate)
    policy: tuple[SigningKey, ...] = field(default_factory=lambda: (keys.generate(),
                                                                    keys.generate()))
    approver: SigningKey = field(default_factory=keys.generate)


def root_envelope(version: int, k: Keys, hub: SigningKey, signers: tuple[SigningKey, ...], *,
                  expires: datetime | None = None) -> bytes:
    """Root ``version``: root 1-of-1, policy 2-of-2, hub 1, approver:risk_officer 1."""
    every = (k.root, *k.policy, hub, k.approver)
    meta = RootMetadata(
        version=version,
        expires=expires or utcnow() + timedelta(days=365),
        keys={s.key_id: s.public for s in every},
        roles={
            "root": RootRole((k.root.key_id,), 1),
            "policy": RootRole(tuple(s.key_id for s in k.policy), 2),
            "hub": RootRole((hub.key_id,), 1),
            "approver:risk_officer": RootRole((k.approver.key_id,), 1),
        },
    )
    return meta.envelope(signers).to_json()


def rotation(world: HubWorld, k: Keys, *, version: int = 2, by: SigningKey | None = None,
             **kw: object) -> bytes:
    """Root ``version`` with keys ``k``, signed by the previous root key ``by`` (default: the
    world's v1 root key) and by its own new root key."""
    return root_envelope(version, k, world.officers.hub,
                         (by or world.officers.root, k.root), **kw)  # type: ignore[arg-type]


def approval(key: SigningKey) -> bytes:
    payload = build_approval(role="risk_officer", subject="credit:7", decision="approve",
                             time=format_time(utcnow()), reason="reviewed")
    return dsse.sign(APPROVAL_PAYLOAD_TYPE, payload, [key]).to_json()


def test_publish_v2_is_recorded_in_the_ledger_and_served_as_the_chain(
    world: HubWorld, hub: RunningHub
) -> None:
    node = SimNode("emea-1")
    enroll(world, hub, node)
    v2 = rotation(world, Keys())
    with operator(world, hub, Role.COMPLIANCE) as c:
        assert c.root_chain(0) == ()  # only the pinned root: nothing published
        r = c.publish_root(v2)
        assert (r.version, r.digest) == (2, sha256_hex(v2))
        assert c.root_chain(0) == (v2,) and c.root_chain(1) == (v2,) and c.root_chain(2) == ()
    with node_client(world, hub, node) as n:  # agents read the chain
        assert n.root_chain(1) == (v2,)
        note = n.get_checkpoint()
        proof = n.inclusion_proof(r.index)
    with operator(world, hub, Role.AUDITOR) as a:
        entry = a.get_entries(r.index, 1).entries[0]
    assert entry.kind == "root_publication"
    event = HubEvent.from_envelope(entry.envelope, world.officers.hub.public)
    assert event.kind is HubEventKind.ROOT_PUBLICATION
    assert dict(event.body) == {"version": 2, "digest": sha256_hex(v2)}
    # The entry is in a checkpoint the new root's hub role verifies: agents can prove it.
    pinned = TrustRoot.from_envelope(world.officers.root_envelope())
    new = pinned.rotate(v2)
    cp = verify_hub_checkpoint(new, note, origin=world.config.origin)
    verify_inclusion(leaf_hash(entry.envelope), r.index, cp.size, list(proof.hashes),
                     cp.root_hash)
    assert hub.state.root.version == 2


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda w: rotation(w, Keys(), version=3), RollbackError, "expected exactly 2"),
        (lambda w: root_envelope(2, (k := Keys()), w.officers.hub, (k.root,)),
         SignatureError, "by root v1"),  # only the new root key: v1 does not prove it
        (lambda w: root_envelope(2, Keys(), w.officers.hub, (w.officers.root,)),
         SignatureError, "own root role"),  # only the old key: v2's own role did not sign
        (lambda w: rotation(w, Keys(), by=keys.generate()), SignatureError, "by root v1"),
        (lambda w: rotation(w, Keys(), expires=utcnow() - timedelta(days=1)), ExpiredError,
         "expired"),
        (lambda w: root_envelope(2, (k := Keys()), keys.generate(), (w.officers.root, k.root)),
         TrustError, "hub's key"),  # the hub could sign no checkpoint agents accept
    ],
    ids=["gap", "new-keys-only", "old-keys-only", "stranger", "expired", "drops-hub-key"],
)
def test_publish_refuses_a_root_the_chain_does_not_prove(  # type: ignore[no-untyped-def]
    world: HubWorld, hub: RunningHub, make, error, match
) -> None:
    with operator(world, hub, Role.COMPLIANCE) as c:
        size = c.get_entries(0).ledger_size
        with pytest.raises(error, match=match):
            c.publish_root(make(world))
        assert c.root_chain(0) == ()
        assert c.get_entries(0).ledger_size == size  # nothing recorded
    assert hub.state.root.version == 1


def test_republishing_the_same_bytes_is_idempotent_other_bytes_are_a_rollback(
    world: HubWorld, hub: RunningHub
) -> None:
    k = Keys()
    v2 = rotation(world, k)
    with operator(world, hub, Role.COMPLIANCE) as c:
        first = c.publish_root(v2)
        size = c.get_entries(0).ledger_size
        assert c.publish_root(v2) == first  # a retry: same index, no second event
        assert c.get_entries(0).ledger_size == size
        with pytest.raises(RollbackError):  # another v2 (another expiry), after v2
            c.publish_root(rotation(world, Keys(), expires=utcnow() + timedelta(days=9)))
        v3 = rotation(world, Keys(), version=3, by=k.root)
        assert c.publish_root(v3).version == 3
        assert c.publish_root(v2) == first  # still idempotent once superseded
        with pytest.raises(RollbackError):
            c.publish_root(world.officers.root_envelope())  # the pinned v1 itself
        assert c.root_chain(0) == (v2, v3) and c.root_chain(2) == (v3,)


def test_policies_and_approvals_verify_under_the_new_root_only_after_rotation(
    world: HubWorld, hub: RunningHub
) -> None:
    k = Keys()
    with operator(world, hub, Role.COMPLIANCE) as c:
        with pytest.raises(SignatureError):  # the new policy keys are not trusted yet
            c.publish(bundle(1, k.policy))
        with pytest.raises(SignatureError):
            c.submit_approval(approval(k.approver))
        c.publish_root(rotation(world, k))
        assert c.publish(bundle(1, k.policy)).version == 1
        assert c.submit_approval(approval(k.approver)).role == "risk_officer"
        with pytest.raises((SignatureError, ThresholdError)):  # v1's policy keys retired
            c.publish(bundle(2, world.officers.policy[:2]))


def test_a_restarted_hub_keeps_the_rotated_root(world: HubWorld) -> None:
    k = Keys()
    with running_hub(world) as hub, operator(world, hub, Role.COMPLIANCE) as c:
        c.publish_root(rotation(world, k))
    # root.json on disk is still v1: the chain comes from the ledger, verified from it.
    assert TrustRoot.load(world.config.trust_root).version == 1
    with running_hub(world) as hub, operator(world, hub, Role.COMPLIANCE) as c:
        assert hub.state.root.version == 2
        assert c.publish(bundle(1, k.policy)).version == 1
        assert c.publish_root(rotation(world, Keys(), version=3, by=k.root)).version == 3


def test_a_rotation_through_one_hub_process_holds_in_another(world: HubWorld) -> None:
    k = Keys()
    with running_hub(world) as a, running_hub(world) as b:
        with operator(world, a, Role.COMPLIANCE) as ca:
            ca.publish_root(rotation(world, k))
        with operator(world, b, Role.COMPLIANCE) as cb:
            assert b.state.root.version == 1  # not yet looked at the chain
            assert cb.publish(bundle(1, k.policy)).version == 1
            with pytest.raises(RollbackError):  # b is at v2 now: another v2 is refused
                cb.publish_root(rotation(world, Keys()))
        assert b.state.root.version == 2


def test_start_refuses_a_pinned_root_that_forks_from_the_ledger(world: HubWorld) -> None:
    v2 = rotation(world, Keys())
    with running_hub(world) as hub, operator(world, hub, Role.COMPLIANCE) as c:
        c.publish_root(v2)
    # Someone pins a different v2 by hand (properly signed, but not the one published).
    world.config.trust_root.write_bytes(rotation(world, Keys()))
    with pytest.raises(ConfigError, match="differs from the v2 published"):
        HubState.open(world.config)
    # The published v2 itself as the pinned file: the chain simply starts there.
    world.config.trust_root.write_bytes(v2)
    state = HubState.open(world.config)
    try:
        assert state.root.version == 2
    finally:
        state.close()


def test_a_stored_chain_that_does_not_verify_is_refused(world: HubWorld) -> None:
    with running_hub(world) as hub, operator(world, hub, Role.COMPLIANCE) as c:
        c.publish_root(rotation(world, Keys()))
        # A forged v3 slipped into the database behind the hub's back (no rotation check):
        # signed by a key no root ever trusted.
        forged = root_envelope(3, Keys(), world.officers.hub, (keys.generate(),))
        hub.state.store.add_root(3, forged, now=utcnow())
        with pytest.raises(SignatureError):  # the running hub fails closed...
            c.publish(bundle(1, world.officers.policy[:2]))
        with pytest.raises(SignatureError):
            c.root_chain(0)
        assert hub.state.root.version == 2
    with pytest.raises(ConfigError, match="do not verify from"):  # ...and will not start
        HubState.open(world.config)


def test_only_compliance_publishes_roots_and_readers_get_the_chain(
    world: HubWorld, hub: RunningHub
) -> None:
    node = SimNode("emea-1")
    enroll(world, hub, node)
    v2 = rotation(world, Keys())
    for role in (Role.ADMIN, Role.AUDITOR, None):
        with operator(world, hub, role) as c, pytest.raises(AccessDeniedError):
            c.publish_root(v2)
    with node_client(world, hub, node) as n, pytest.raises(AccessDeniedError):
        n.publish_root(v2)
    with operator(world, hub, None) as anon, pytest.raises(AccessDeniedError):
        anon.root_chain(0)
    for role in (Role.ADMIN, Role.AUDITOR, Role.COMPLIANCE):
        with operator(world, hub, role) as c:
            assert c.root_chain(0) == ()


def test_cli_publish_root(world: HubWorld, hub: RunningHub, tmp_path: Path) -> None:
    k = Keys()
    conn = ("--hub", f"127.0.0.1:{hub.port}", "--hub-dir", str(world.dir))
    v2, v4 = tmp_path / "root-v2.json", tmp_path / "root-v4.json"
    v2.write_bytes(rotation(world, k))
    v4.write_bytes(rotation(world, Keys(), version=4, by=k.root))
    ok = warden_process("hub", "publish-root", str(v2), *conn)
    assert ok.returncode == 0, ok.stderr
    assert f"published trust root v2 (digest {sha256_hex(v2.read_bytes())}, ledger index" \
        in ok.stdout
    gap = warden_process("hub", "publish-root", str(v4), *conn)
    assert gap.returncode == 1, gap.stderr
    assert gap.stderr.startswith("error: hub: ") and "expected exactly 3" in gap.stderr
    assert "Traceback" not in gap.stderr
    (tmp_path / "policy.bundle").write_bytes(bundle(1, k.policy))
    (tmp_path / "junk.json").write_bytes(b"not json")
    for path, says in ((tmp_path / "policy.bundle", "is not a trust root"),
                       (tmp_path / "junk.json", "junk.json"),
                       (tmp_path / "missing.json", "missing.json: no such file")):
        bad = warden_process("hub", "publish-root", str(path), *conn)
        assert bad.returncode == 2, (path, bad.stderr)
        assert bad.stderr.startswith("error: ") and says in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr
    with operator(world, hub, Role.AUDITOR) as a:
        assert a.root_chain(0) == (v2.read_bytes(),)
