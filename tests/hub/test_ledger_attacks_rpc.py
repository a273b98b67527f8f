"""Every attack of :data:`tests.ledger_attacks.LEDGER_ATTACKS` over real gRPC + TLS: the client
raises the table's typed error, the raw call ends with the table's status code, nothing is
appended (the ledger size is unchanged), and the honest node appends its next record after.

One hub serves the whole module; each attack gets nodes of its own, so attacks cannot see
each other's records.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from hub.config import Role
from hub.server import RunningHub
from protos.callsig import sign_call
from protos.warden.v1 import ledger_pb2
from tests.ledger_attacks import AttackScene, LedgerAttack, attack_params
from tests.sim import SimNode
from trust import keys
from trust.errors import SequenceGapError

from .harness import HubWorld, enroll, make_world, node_client, operator, running_hub

APPEND = "/warden.v1.LedgerService/Append"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubWorld, RunningHub]]:
    """One hub on SQLite for every attack of the table."""
    world = make_world(tmp_path_factory.mktemp("attacks"))
    with running_hub(world) as hub:
        yield world, hub


def _scene(world: HubWorld, hub: RunningHub, attack: LedgerAttack) -> AttackScene:
    node, other = SimNode(f"{attack.name}.node"), SimNode(f"{attack.name}.other")
    hub_event = enroll(world, hub, node).envelope
    enroll(world, hub, other)
    with node_client(world, hub, other) as c:
        c.append(other.records(1))
    with node_client(world, hub, node) as c:
        c.append(node.records(2))
        if attack.rotated:
            new = keys.generate()
            c.rotate_key(new)
            node.rotate(new)
    return AttackScene(node, other, hub_event)


def _ledger_size(world: HubWorld, hub: RunningHub) -> int:
    with operator(world, hub, Role.AUDITOR) as a:
        return a.get_entries(0, 1).ledger_size


def _raw_status(world: HubWorld, hub: RunningHub, node: SimNode,
                batch: list[bytes]) -> grpc.StatusCode:
    """The status code the hub answers a signed Append of ``batch`` with (no client mapping)."""
    body = ledger_pb2.AppendRequest(envelopes=batch).SerializeToString()
    channel = grpc.secure_channel(f"127.0.0.1:{hub.port}", grpc.ssl_channel_credentials(world.ca))
    try:
        call: grpc.UnaryUnaryMultiCallable[bytes, ledger_pb2.AppendResponse] = (
            channel.unary_unary(APPEND, request_serializer=None,
                                response_deserializer=ledger_pb2.AppendResponse.FromString))
        with pytest.raises(grpc.RpcError) as info:
            call(body, metadata=sign_call(node.key, APPEND, node.node_id, body), timeout=10)
        code = info.value.code()
        assert isinstance(code, grpc.StatusCode)
        return code
    finally:
        channel.close()


@pytest.mark.parametrize("attack", attack_params())
def test_attack_over_rpc_is_refused_and_changes_nothing(
    served: tuple[HubWorld, RunningHub], attack: LedgerAttack
) -> None:
    world, hub = served
    scene = _scene(world, hub, attack)
    batch = attack.forge(scene)
    size = _ledger_size(world, hub)
    with node_client(world, hub, scene.node) as c:
        with pytest.raises(attack.error, match=attack.match) as err:
            c.append(batch)
        if attack.expected_seq is not None:
            assert isinstance(err.value, SequenceGapError)
            assert err.value.expected == attack.expected_seq
        assert _raw_status(world, hub, scene.node, batch) == grpc.StatusCode[attack.status]
        assert _ledger_size(world, hub) == size
        # The honest node is not locked out by what was attempted in its name.
        ack = c.append([scene.node.record()]).acks
    assert [(a.index, a.duplicate) for a in ack] == [(size, False)]
