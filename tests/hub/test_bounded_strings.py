"""Oversize strings are refused at the hub's edge, named in a short error, and never stored.

Issue 8, item 14: a 1 MB ``agent_version`` / ``policy_name`` in Heartbeat was stored, and a 1 MB
policy name was echoed into the error until gRPC dropped the stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub.config import Role
from hub.limits import MAX_CHARS, SHOWN_CHARS, bounded, shown
from hub.server import RunningHub
from protos.client import HubClient, NodeIdentity
from tests.sim import SimNode
from trust import keys
from trust.errors import AccessDeniedError, FormatError

from .harness import HubWorld, enroll, make_world, node_client, operator, running_hub

HUGE = "x" * 1_000_000
SHORT_MESSAGE = 300  # characters: a refusal names the field and the limit, nothing more


@dataclass(frozen=True)
class Served:
    """One hub for the whole table, with an enrolled node for node-only RPCs."""

    world: HubWorld
    hub: RunningHub
    node: SimNode


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    world = make_world(Path(tmp_path_factory.mktemp("bounded")))
    with running_hub(world) as hub:
        node = SimNode("emea-1")
        enroll(world, hub, node)
        yield Served(world, hub, node)


def _anonymous(s: Served) -> HubClient:
    return operator(s.world, s.hub, None)


def _auditor(s: Served) -> HubClient:
    return operator(s.world, s.hub, Role.AUDITOR)


def _node(s: Served) -> HubClient:
    return node_client(s.world, s.hub, s.node)


Call = Callable[[HubClient, Served], object]

# (RPC, field named in the error, who calls, the call with one oversize field)
OVERSIZE: list[tuple[str, str, Callable[[Served], HubClient], Call]] = [
    ("Enroll", "node_id", _anonymous,
     lambda c, s: c.enroll(HUGE, keys.generate(), s.world.token_for("emea-2"))),
    ("Enroll", "token", _anonymous,
     lambda c, s: c.enroll("emea-2", keys.generate(), HUGE)),
    ("Enroll", "agent_version", _anonymous,
     lambda c, s: c.enroll("emea-2", keys.generate(), s.world.token_for("emea-2"),
                           agent_version=HUGE)),
    ("Heartbeat", "agent_version", _node, lambda c, s: c.heartbeat(HUGE)),
    ("Heartbeat", "policy_name", _node,
     lambda c, s: c.heartbeat("0.1.0", policy_name=HUGE, policy_version=1)),
    ("PolicyService.Get", "name", _auditor, lambda c, s: c.get_policy(name=HUGE)),
    ("PolicyService.Get", "name", _auditor, lambda c, s: c.get_policy(name=HUGE, version=1)),
    ("PolicyService.Get", "revision", _auditor, lambda c, s: c.get_policy(if_none_match=HUGE)),
    ("ApprovalService.List", "role", _auditor, lambda c, s: c.list_approvals(role=HUGE)),
    ("ApprovalService.List", "subject", _auditor, lambda c, s: c.list_approvals(subject=HUGE)),
]


@pytest.mark.parametrize(("rpc", "field", "who", "call"), OVERSIZE,
                         ids=[f"{r}-{f}-{i}" for i, (r, f, _, _) in enumerate(OVERSIZE)])
def test_oversize_field_is_refused_by_name_and_not_stored(
    served: Served, rpc: str, field: str, who: Callable[[Served], HubClient], call: Call
) -> None:
    store = served.hub.state.store
    size, beats = store.size(), store.heartbeats()
    with who(served) as c, pytest.raises(FormatError) as info:  # INVALID_ARGUMENT
        call(c, served)
    message = info.value.message
    assert type(info.value) is FormatError, rpc
    assert field in message and str(MAX_CHARS[field]) in message, message
    assert len(message) < SHORT_MESSAGE, f"{rpc} echoes {len(message)} characters"
    assert store.size() == size and store.heartbeats() == beats


def test_limits_allow_every_legitimate_value(served: Served) -> None:
    # At the limit is fine: the bound refuses only what is longer.
    with _node(served) as c:
        c.heartbeat("v" * MAX_CHARS["agent_version"])
    assert [h.agent_version for h in served.hub.state.store.heartbeats()
            if h.node_id == "emea-1"] == ["v" * MAX_CHARS["agent_version"]]


def test_oversize_node_id_in_call_metadata_is_not_echoed(served: Served) -> None:
    long_id = "n" * 4000  # fits gRPC's 8 KiB metadata limit; far beyond a node id
    target = f"127.0.0.1:{served.hub.port}"
    with HubClient(target, ca_cert=served.world.ca,
                   node=NodeIdentity(long_id, keys.generate())) as c, \
            pytest.raises(AccessDeniedError) as info:
        c.heartbeat("0.1.0")
    message = info.value.message
    assert "node_id" in message and str(MAX_CHARS["node_id"]) in message
    assert len(message) < SHORT_MESSAGE


def test_shown_cuts_long_values_with_an_ellipsis() -> None:
    assert shown("abc") == "'abc'"
    cut = shown("y" * 10_000)
    assert cut.startswith("'" + "y" * SHOWN_CHARS + "'…") and "10000 characters" in cut
    assert len(cut) < SHOWN_CHARS + 40


def test_bounded_names_field_and_limit() -> None:
    assert bounded("node_id", "a" * 128) == "a" * 128
    with pytest.raises(FormatError, match=r"node_id is 129 characters long; the limit is 128"):
        bounded("node_id", "a" * 129)
