"""Enroll needs proof of possession: a signature by the enrolling key over (node, token, time).

The attack (issue 8, item 13): ``enroll("nodeC", keyA.public, nodeC-token)`` used to succeed, so
nodeC's ledger identity was a key only nodeA holds (and two nodes shared one key). Every refused
enrollment must leave the token unused, so the rightful node can still enroll with it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub.server import RunningHub
from hub.tls import hash_token
from protos.callsig import CALL_PAYLOAD_TYPE, ENROLL_PAYLOAD_TYPE, enroll_message
from protos.client import HubClient
from protos.warden.v1 import enrollment_pb2
from tests.sim import SimNode
from trust import keys
from trust.dsse import pae
from trust.errors import EnrollmentError, NotFoundError, SignatureError, WardenError
from trust.keys import SigningKey

from .harness import HubWorld, enroll, make_world, operator, running_hub

ENROLL = "/warden.v1.EnrollmentService/Enroll"


def _raw_enroll(
    c: HubClient,
    node_id: str,
    public: bytes,
    token: str,
    *,
    unix_time: int | None = None,
    signature: bytes = b"",
) -> enrollment_pb2.EnrollResponse:
    """An Enroll request built by hand (what an attacker can send)."""
    req = enrollment_pb2.EnrollRequest(node_id=node_id, public_key=public, token=token,
                                       time=int(time.time()) if unix_time is None else unix_time,
                                       signature=signature)
    return c._call(ENROLL, req, enrollment_pb2.EnrollResponse)


def _signed(key: SigningKey, node_id: str, token: str, unix_time: int) -> bytes:
    return key.sign(enroll_message(node_id, key.public, token, unix_time))


def _has_node(hub: RunningHub, node_id: str) -> bool:
    try:
        hub.state.store.node_key(node_id)
    except NotFoundError:
        return False
    return True


@dataclass(frozen=True)
class Served:
    """One hub for this module; every test uses node ids of its own."""

    world: HubWorld
    hub: RunningHub


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    world = make_world(Path(tmp_path_factory.mktemp("possession")))
    with running_hub(world) as hub:
        yield Served(world, hub)


def test_enroll_with_another_nodes_public_key_is_refused_and_keeps_the_token(
    served: Served,
) -> None:
    world, hub = served.world, served.hub
    node_a = SimNode("attack-a")
    enroll(world, hub, node_a)
    key_c = keys.generate()
    token_c = world.token_for("attack-c")
    now = int(time.time())
    size = hub.state.store.size()
    with operator(world, hub, None) as c:
        # No signature at all: what an old client (or the attacker) sends.
        with pytest.raises(SignatureError, match="proof of possession"):
            _raw_enroll(c, "attack-c", node_a.key.public.raw, token_c)
        # A signature by the attacker's own key while presenting keyA's public key.
        forged = key_c.sign(enroll_message("attack-c", node_a.key.public, token_c, now))
        with pytest.raises(SignatureError, match="proof of possession"):
            _raw_enroll(c, "attack-c", node_a.key.public.raw, token_c, unix_time=now,
                        signature=forged)
        # keyA's signature over a statement for keyA's own node does not transfer either.
        theirs = _signed(node_a.key, "attack-a", token_c, now)
        with pytest.raises(SignatureError):
            _raw_enroll(c, "attack-c", node_a.key.public.raw, token_c, unix_time=now,
                        signature=theirs)
        assert not _has_node(hub, "attack-c") and hub.state.store.size() == size
        # The token was not consumed: nodeC enrolls with a key it holds.
        c.enroll("attack-c", key_c, token_c)
    assert hub.state.store.node_key("attack-a").key_id == node_a.key.key_id
    assert hub.state.store.node_key("attack-c").key_id == key_c.key_id


@pytest.mark.parametrize("case", ["other node id", "other token", "stale time", "future time",
                                  "other time"])
def test_replayed_enroll_signature_is_refused(served: Served, case: str) -> None:
    world, hub = served.world, served.hub
    slug = case.replace(" ", "-")
    key = keys.generate()
    node = f"{slug}-sent"
    token = world.token_for(node)  # tokens are issued for one node id
    now = int(time.time())
    skew = world.config.clock_skew_s
    # What the signature covers, and what the replayed request claims instead.
    signed: dict[str, str | int] = {"node": node, "token": token, "time": now}
    sent = dict(signed)
    expected: type[WardenError] = SignatureError
    if case == "other node id":
        signed["node"] = f"{slug}-signed"
    elif case == "other token":
        signed["token"] = world.token_for(node)
    elif case == "stale time":
        signed["time"] = sent["time"] = now - skew - 60
        expected = EnrollmentError
    elif case == "future time":
        signed["time"] = sent["time"] = now + skew + 60
        expected = EnrollmentError
    else:
        sent["time"] = now - 1
    sig = _signed(key, str(signed["node"]), str(signed["token"]), int(signed["time"]))
    size = hub.state.store.size()
    with operator(world, hub, None) as c:
        with pytest.raises(expected):
            _raw_enroll(c, node, key.public.raw, token, unix_time=int(sent["time"]),
                        signature=sig)
        assert not _has_node(hub, node) and hub.state.store.size() == size
        # The token is still good for a correct enrollment.
        c.enroll(node, key, token)
    assert hub.state.store.node_key(node).key_id == key.key_id


def test_enroll_statement_is_a_dsse_pae_of_its_own_type() -> None:
    key = keys.generate()
    message = enroll_message("emea-1", key.public, "wdn_token", 1_700_000_000)
    assert ENROLL_PAYLOAD_TYPE != CALL_PAYLOAD_TYPE  # never mistaken for a call signature
    body = (b'{"key_id":"' + key.key_id.encode() + b'","node_id":"emea-1",'
            b'"time":1700000000,"token_sha256":"' + hash_token("wdn_token").encode() + b'"}')
    assert message == pae(ENROLL_PAYLOAD_TYPE, body)
