"""PolicyService: publish re-verifies against the hub's root; Get; Watch pushes within 1 s."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from hub.config import Role
from hub.server import RunningHub
from protos.client import PolicyRecord
from tests.sim import SimNode
from trust import dsse
from trust.errors import (
    ExpiredError,
    FormatError,
    NotFoundError,
    RollbackError,
    SignatureError,
    ThresholdError,
)
from trust.timeutil import utcnow

from .harness import HubWorld, bundle, enroll, node_client, operator


def test_publish_and_get(world: HubWorld, hub: RunningHub) -> None:
    p = world.officers.policy
    with operator(world, hub, Role.COMPLIANCE) as c:
        with pytest.raises(NotFoundError):
            c.get_policy()
        # Built once: bundle() stamps its expiry from the clock, so two builds straddling a
        # second would differ in content (and the second be refused as a rewrite).
        v1_envelope = bundle(1, p[:2])
        r1 = c.publish(v1_envelope)
        assert (r1.name, r1.version) == ("standard", 1)
        again = c.publish(v1_envelope)  # identical content: idempotent
        assert again.index == r1.index
        r2 = c.publish(bundle(2, p[1:]))
        latest = c.get_policy()
        assert latest is not None and latest.version == 2 and latest.revision == r2.revision
        v1 = c.get_policy("standard", version=1)
        assert v1 is not None and v1.version == 1
        env = dsse.Envelope.from_json(v1.envelope)
        assert len(env.signatures) == 2  # relayed verbatim
        assert c.get_policy("standard", if_none_match=r2.revision) is None
        assert c.get_policy("standard", if_none_match=r1.revision) is not None
        with pytest.raises(NotFoundError):
            c.get_policy("standard", version=7)
        with pytest.raises(NotFoundError):
            c.get_policy("other")
    with operator(world, hub, Role.AUDITOR) as a:
        kinds = [e.kind for e in a.get_entries(0).entries]
    assert kinds.count("policy_publication") == 2


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda w: bundle(1, ()), SignatureError),  # unsigned
        (lambda w: bundle(1, w.officers.policy[:1]), ThresholdError),  # 1 of 2
        (lambda w: bundle(1, (w.officers.hub, w.officers.root)), SignatureError),  # wrong role
        (lambda w: bundle(1, w.officers.policy[:2], expires=utcnow() - timedelta(days=1)),
         ExpiredError),
        (lambda w: b'{"payloadType": "x"}', FormatError),
    ],
    ids=["unsigned", "below-threshold", "wrong-role", "expired", "malformed"],
)
def test_publish_refuses_bad_bundles(world: HubWorld, hub: RunningHub, make, error) -> None:  # type: ignore[no-untyped-def]
    with operator(world, hub, Role.COMPLIANCE) as c, pytest.raises(error):
        c.publish(make(world))


def test_publish_refuses_rollback(world: HubWorld, hub: RunningHub) -> None:
    p = world.officers.policy
    with operator(world, hub, Role.COMPLIANCE) as c:
        c.publish(bundle(3, p[:2]))
        with pytest.raises(RollbackError):
            c.publish(bundle(2, p[:2]))
        with pytest.raises(RollbackError):  # same version, different content
            c.publish(bundle(3, p[:2], expires=utcnow() + timedelta(days=9)))


def test_watch_delivers_a_new_bundle_to_two_watchers_within_a_second(
    world: HubWorld, hub: RunningHub
) -> None:
    a, b = SimNode("emea-1"), SimNode("apac-1")
    enroll(world, hub, a)
    enroll(world, hub, b)
    p = world.officers.policy
    with operator(world, hub, Role.COMPLIANCE) as c:
        c.publish(bundle(1, p[:2]))
    received: dict[str, list[tuple[PolicyRecord, float]]] = {"emea-1": [], "apac-1": []}
    watches = []
    threads = []
    for node in (a, b):
        client = node_client(world, hub, node)
        w = client.watch_policies("standard", after_version=None)
        watches.append((client, w))

        def run(w=w, node_id=node.node_id) -> None:  # type: ignore[no-untyped-def]
            for rec in w:
                received[node_id].append((rec, time.monotonic()))

        t = threading.Thread(target=run, daemon=True)
        t.start()
        threads.append(t)
    # Both get the current bundle first.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not all(len(v) == 1 for v in received.values()):
        time.sleep(0.01)
    assert [len(v) for v in received.values()] == [1, 1]
    with operator(world, hub, Role.COMPLIANCE) as c:
        published_at = time.monotonic()
        c.publish(bundle(2, p[:2]))
    deadline = published_at + 1.0
    while time.monotonic() < deadline and not all(len(v) == 2 for v in received.values()):
        time.sleep(0.005)
    for node_id, got in received.items():
        assert len(got) == 2, f"{node_id} did not get v2 within 1 s"
        rec, at = got[1]
        assert rec.version == 2 and at - published_at < 1.0
    for client, w in watches:
        w.cancel()
        client.close()
    for t in threads:
        t.join(timeout=5)
        assert not t.is_alive()


def test_watch_skips_what_the_agent_already_has(world: HubWorld, hub: RunningHub) -> None:
    node = SimNode("emea-1")
    enroll(world, hub, node)
    with operator(world, hub, Role.COMPLIANCE) as c:
        c.publish(bundle(1, world.officers.policy[:2]))
        c.publish(bundle(2, world.officers.policy[:2]))
    got: list[int] = []
    with node_client(world, hub, node) as client:
        w = client.watch_policies("standard", after_version=2)
        t = threading.Thread(target=lambda: got.extend(r.version for r in w), daemon=True)
        t.start()
        time.sleep(0.3)
        assert got == []
        with operator(world, hub, Role.COMPLIANCE) as c:
            c.publish(bundle(3, world.officers.policy[:2]))
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and not got:
            time.sleep(0.01)
        w.cancel()
        t.join(timeout=5)
    assert got == [3]


def test_bundle_over_the_agents_size_limit_is_not_published(
    world: HubWorld, hub: RunningHub
) -> None:
    from trust.policy.bundle import DEFAULT_MAX_BYTES

    big = bundle(1, world.officers.policy[:2], data={"blob": "x" * DEFAULT_MAX_BYTES})
    assert DEFAULT_MAX_BYTES < len(big) < world.config.max_message_bytes
    with operator(world, hub, Role.COMPLIANCE) as c:
        with pytest.raises(FormatError, match="limit"):
            c.publish(big)
        with pytest.raises(NotFoundError):
            c.get_policy()
