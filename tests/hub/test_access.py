"""Every RPC checks its caller: a wrong role, no credentials, or forged node calls are refused."""

from __future__ import annotations

import time

import grpc
import pytest
from google.protobuf import message_factory

from hub.auth import ACCESS, Caller
from hub.config import Role
from hub.server import RunningHub
from protos.callsig import sign_call
from protos.client import HubClient, NodeIdentity
from protos.warden.v1 import approval_pb2, enrollment_pb2, ledger_pb2, policy_pb2, root_pb2
from tests.sim import SimNode
from trust import keys
from trust.errors import AccessDeniedError

from .harness import HubWorld, enroll, node_client, operator

_SERVICES = {
    s.full_name: s
    for m in (approval_pb2, enrollment_pb2, ledger_pb2, policy_pb2, root_pb2)
    for s in m.DESCRIPTOR.services_by_name.values()
}


def _all_methods() -> list[str]:
    return sorted(f"/{name}/{m.name}" for name, s in _SERVICES.items() for m in s.methods)


def test_access_table_covers_every_rpc() -> None:
    assert sorted(ACCESS) == _all_methods()


def _raw(method: str, client: HubClient) -> None:
    service, name = method.strip("/").split("/")
    desc = _SERVICES[service].methods_by_name[name]
    req = message_factory.GetMessageClass(desc.input_type)()
    resp_cls = message_factory.GetMessageClass(desc.output_type)
    if desc.server_streaming:
        body = req.SerializeToString()
        fn = client._callable(method, resp_cls, stream=True)
        call = fn(body, metadata=client._metadata(method, body), timeout=5)
        try:
            next(iter(call))
        except grpc.RpcError as exc:
            raise client._error(exc) from None
        finally:
            call.cancel()
    else:
        client._call(method, req, resp_cls)


def _wrong_callers(method: str) -> list[str]:
    allowed = ACCESS[method]
    if Caller.ANYONE in allowed:
        return []
    every = ["anonymous", "admin", "compliance", "auditor", "node"]
    return [c for c in every if c == "anonymous" or Caller(c) not in allowed]


CASES = [(m, c) for m in _all_methods() for c in _wrong_callers(m)]


def test_every_rpc_with_a_wrong_role_is_refused(world: HubWorld, hub: RunningHub) -> None:
    node = SimNode("emea-1")
    enroll(world, hub, node)
    clients = {
        "anonymous": operator(world, hub, None),
        "admin": operator(world, hub, Role.ADMIN),
        "compliance": operator(world, hub, Role.COMPLIANCE),
        "auditor": operator(world, hub, Role.AUDITOR),
        "node": node_client(world, hub, node),
    }
    assert len(CASES) >= 20
    tried = set()
    for method, caller in CASES:
        with pytest.raises(AccessDeniedError):
            _raw(method, clients[caller])
        tried.add(method)
    # Every method except the open Enroll was hit with at least one wrong caller.
    assert tried == set(_all_methods()) - {"/warden.v1.EnrollmentService/Enroll"}
    for c in clients.values():
        c.close()


def test_enroll_with_a_bad_token_is_refused(world: HubWorld, hub: RunningHub) -> None:
    from trust.errors import EnrollmentError

    node = SimNode("emea-1")
    with operator(world, hub, None) as c:
        with pytest.raises(EnrollmentError):
            c.enroll("emea-1", node.key, "wdn_not-a-token")
        token = world.token_for("emea-1")
        with pytest.raises(EnrollmentError):  # a token for another node
            c.enroll("apac-1", node.key, token)
        c.enroll("emea-1", node.key, token)
        with pytest.raises(EnrollmentError):  # reused
            c.enroll("emea-1", keys.generate(), token)


def test_expired_token_is_refused(world: HubWorld, hub: RunningHub) -> None:
    from datetime import timedelta

    from hub.tls import hash_token
    from trust.errors import EnrollmentError
    from trust.timeutil import utcnow

    now = utcnow()
    hub.state.store.create_token("emea-1", hash_token("wdn_expired"), now - timedelta(seconds=1),
                                 now=now - timedelta(hours=1))
    with operator(world, hub, None) as c, pytest.raises(EnrollmentError, match="expired"):
        c.enroll("emea-1", keys.generate(), "wdn_expired")


def _grpc_code(exc_info: pytest.ExceptionInfo[grpc.RpcError]) -> grpc.StatusCode:
    return exc_info.value.code()  # type: ignore[no-any-return]


def test_forged_node_calls(world: HubWorld, hub: RunningHub) -> None:
    node = SimNode("emea-1")
    enroll(world, hub, node)
    channel = grpc.secure_channel(f"127.0.0.1:{hub.port}", grpc.ssl_channel_credentials(world.ca))
    method = "/warden.v1.LedgerService/GetCheckpoint"
    call = channel.unary_unary(method, request_serializer=None,
                               response_deserializer=ledger_pb2.GetCheckpointResponse.FromString)
    body = ledger_pb2.GetCheckpointRequest().SerializeToString()
    ok = sign_call(node.key, method, "emea-1", body)
    call(body, metadata=ok)  # the genuine call works

    def refused(md: tuple[tuple[str, str], ...], payload: bytes = body) -> None:
        with pytest.raises(grpc.RpcError) as info:
            call(payload, metadata=md)
        assert _grpc_code(info) == grpc.StatusCode.UNAUTHENTICATED, info.value.details()

    refused(ok)  # replayed nonce
    other = ledger_pb2.GetCheckpointRequest(tree_size=1).SerializeToString()
    refused(sign_call(node.key, method, "emea-1", body), other)  # signature over another body
    refused(sign_call(node.key, "/warden.v1.LedgerService/GetEntries", "emea-1", body))
    refused(sign_call(keys.generate(), method, "emea-1", body))  # wrong key
    refused(sign_call(node.key, method, "emea-1", body, unix_time=int(time.time()) - 3600))
    refused(sign_call(node.key, method, "apac-1", body))  # unenrolled node id
    refused((("authorization", "Bearer wdn_wrong"),))
    refused((("authorization", "Basic abc"),))
    channel.close()


def test_insecure_client_refuses_non_loopback() -> None:
    from trust.errors import UsageError

    with pytest.raises(UsageError):
        HubClient("10.0.0.1:7443", insecure=True)
    with pytest.raises(UsageError):
        HubClient("127.0.0.1:1", token="t", node=NodeIdentity("n", keys.generate()),
                  insecure=True)


def test_a_node_whose_status_is_not_active_cannot_call(world: HubWorld, hub: RunningHub) -> None:
    import sqlalchemy as sa

    from hub.ledger import schema

    node = SimNode("emea-1")
    enroll(world, hub, node)
    with node_client(world, hub, node) as c:
        c.append(node.records(1))
        engine = hub.state.store.engine  # type: ignore[attr-defined]
        with engine.begin() as conn:
            conn.execute(sa.update(schema.nodes).values(status="revoked"))
        with pytest.raises(AccessDeniedError, match="not active"):
            c.append(node.records(1))
        with pytest.raises(AccessDeniedError):
            c.heartbeat("1.0")
