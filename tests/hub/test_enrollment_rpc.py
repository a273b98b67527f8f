"""EnrollmentService and ApprovalService over gRPC: rotation, heartbeat, approvals."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.config import Role
from hub.server import RunningHub
from protos.client import HubClient, NodeIdentity
from protos.warden.v1 import enrollment_pb2
from tests.sim import SimNode
from trust import dsse, keys
from trust.approval import APPROVAL_PAYLOAD_TYPE, build_approval
from trust.errors import AccessDeniedError, EnrollmentError, FormatError, SignatureError
from trust.record import HubEvent
from trust.timeutil import format_time, utcnow

from .harness import HubWorld, bundle, enroll, node_client, operator


def test_enroll_appends_a_hub_signed_entry(world: HubWorld, hub: RunningHub) -> None:
    node = SimNode("emea-1")
    with operator(world, hub, None) as c:
        r = c.enroll("emea-1", node.key, world.token_for("emea-1"))
        with pytest.raises(EnrollmentError):  # the id is taken
            c.enroll("emea-1", keys.generate(), world.token_for("emea-1"))
        with pytest.raises(FormatError):  # not an ed25519 public key (sent by hand)
            c._call("/warden.v1.EnrollmentService/Enroll",
                    enrollment_pb2.EnrollRequest(node_id="emea-2", public_key=b"short",
                                                 token=world.token_for("emea-2")),
                    enrollment_pb2.EnrollResponse)
        with pytest.raises(FormatError):
            c.enroll("bad id!", node.key, world.token_for("emea-2"))
    event = HubEvent.from_envelope(r.envelope, world.officers.hub.public)
    assert event.kind.value == "enrollment"
    assert event.body["node_id"] == "emea-1" and event.body["key_id"] == node.key.key_id
    assert r.checkpoint  # covers it


def test_key_rotation(world: HubWorld, hub: RunningHub) -> None:
    node = SimNode("emea-1")
    enroll(world, hub, node)
    new = keys.generate()
    target = f"127.0.0.1:{hub.port}"
    with node_client(world, hub, node) as c:
        c.append(node.records(2))
        # A rotation whose new-key signature is wrong is refused (proof of possession).
        from protos.warden.v1 import enrollment_pb2
        from trust.record import rotation_message

        msg = rotation_message("emea-1", node.key.public, new.public)
        bad = enrollment_pb2.RotateKeyRequest(new_public_key=new.public.raw,
                                              old_key_signature=node.key.sign(msg),
                                              new_key_signature=keys.generate().sign(msg))
        with pytest.raises(SignatureError):
            c._call("/warden.v1.EnrollmentService/RotateKey", bad,
                    enrollment_pb2.RotateKeyResponse)
        bad2 = enrollment_pb2.RotateKeyRequest(new_public_key=new.public.raw,
                                               old_key_signature=new.sign(msg),
                                               new_key_signature=new.sign(msg))
        with pytest.raises(SignatureError):
            c._call("/warden.v1.EnrollmentService/RotateKey", bad2,
                    enrollment_pb2.RotateKeyResponse)
        r = c.rotate_key(new)
        event = HubEvent.from_envelope(r.envelope, world.officers.hub.public)
        assert event.kind.value == "key_rotation" and event.body["new_key_id"] == new.key_id
        # The client now signs with the new key; records signed by it append.
        node.key_before_rotation = node.key  # type: ignore[attr-defined]
        node.key = new
        c.append(node.records(1))
    old_key = NodeIdentity("emea-1", node.key_before_rotation)  # type: ignore[attr-defined]
    with HubClient(target, ca_cert=world.ca, node=old_key) as old, \
            pytest.raises(AccessDeniedError):
        old.heartbeat("1.0")


def test_heartbeat(world: HubWorld, hub: RunningHub) -> None:
    node = SimNode("emea-1")
    enroll(world, hub, node)
    with node_client(world, hub, node) as c:
        r = c.heartbeat("0.1.0", policy_name="standard", policy_version=None)
        assert r.latest_policy_version is None
        assert r.hub_time.utcoffset() == timedelta(0)  # the hub clock, in UTC
        with operator(world, hub, Role.COMPLIANCE) as op:
            op.publish(bundle(4, world.officers.policy[:2]))
        r = c.heartbeat("0.1.0", policy_name="standard", policy_version=3)
        assert r.latest_policy_version == 4
    beats = hub.state.store.heartbeats()
    assert [(h.node_id, h.agent_version, h.policy_version) for h in beats] == [
        ("emea-1", "0.1.0", 3)]


def _approval(key: keys.SigningKey, role: str = "risk_officer", subject: str = "credit:7") -> bytes:
    payload = build_approval(role=role, subject=subject, decision="approve",
                             time=format_time(utcnow()), reason="reviewed")
    return dsse.sign(APPROVAL_PAYLOAD_TYPE, payload, [key]).to_json()


def test_approvals(world: HubWorld, hub: RunningHub) -> None:
    from trust.errors import TrustError

    with operator(world, hub, Role.COMPLIANCE) as c:
        r = c.submit_approval(_approval(world.officers.approver))
        assert r.role == "risk_officer"
        c.submit_approval(_approval(world.officers.approver, subject="fraud:2"))
        with pytest.raises(SignatureError):  # not an approver key
            c.submit_approval(_approval(world.officers.policy[0]))
        with pytest.raises(TrustError):  # a role the root does not have
            c.submit_approval(_approval(world.officers.approver, role="cfo"))
        with pytest.raises(FormatError):
            c.submit_approval(b"[]")
        listed = c.list_approvals(subject="credit:7")
        assert [a.approval_id for a in listed] == [r.approval_id]
        assert len(c.list_approvals()) == 2
        assert len(c.list_approvals(role="risk_officer", limit=1)) == 1


def test_unexpected_errors_are_internal_without_details(
    world: HubWorld, hub: RunningHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub import handlers as hub_handlers
    from trust.errors import TransportError

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(hub_handlers, "heartbeat", boom)
    node = SimNode("emea-1")
    enroll(world, hub, node)
    with node_client(world, hub, node) as c, pytest.raises(TransportError) as info:
        c.heartbeat("1.0")
    assert "INTERNAL" in info.value.message and "secret" not in info.value.message
