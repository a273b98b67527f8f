"""Sizes, indexes and versions up to 2^64-1 (the proto fields are uint64) over real gRPC.

The database holds signed 64-bit integers; a value it cannot hold is simply not in the ledger
(NOT_FOUND) or, where it would be stored, an invalid argument — never INTERNAL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hub.config import Role
from hub.server import RunningHub
from protos.client import HubClient
from tests.sim import SimNode
from trust.errors import FormatError, NotFoundError, UsageError

from .harness import HubWorld, bundle, enroll, node_client, operator

BIG = [2**63 - 1, 2**63, 2**64 - 1]

CALLS: dict[str, Callable[[HubClient, int], Any]] = {
    "GetCheckpoint": lambda c, n: c.get_checkpoint(n),
    "GetEntries": lambda c, n: c.get_entries(n),
    "GetInclusionProof.index": lambda c, n: c.inclusion_proof(n),
    "GetInclusionProof.tree_size": lambda c, n: c.inclusion_proof(0, n),
    "GetConsistencyProof.old_size": lambda c, n: c.consistency_proof(n),
    "GetConsistencyProof.new_size": lambda c, n: c.consistency_proof(1, n),
    "GetPolicy.version": lambda c, n: c.get_policy("p", n),
}


def test_huge_sizes_and_indexes_are_not_found(
    world: HubWorld, hub: RunningHub, caplog: pytest.LogCaptureFixture
) -> None:
    node = SimNode("emea-1")
    enroll(world, hub, node)
    with node_client(world, hub, node) as c:
        c.append(node.records(2))
    with operator(world, hub, Role.COMPLIANCE) as a:
        a.publish(bundle(1, world.officers.policy[:2], name="p"))
        for name, call in CALLS.items():
            for n in BIG:
                with pytest.raises((NotFoundError, UsageError)) as exc:
                    call(a, n)
                assert "internal" not in str(exc.value).lower(), (name, n)
    assert "Traceback" not in caplog.text and "internal error" not in caplog.text


def test_huge_heartbeat_version_is_an_invalid_argument(world: HubWorld, hub: RunningHub) -> None:
    node = SimNode("emea-1")
    enroll(world, hub, node)
    with node_client(world, hub, node) as c:
        for n in BIG[1:]:
            with pytest.raises((UsageError, FormatError)):
                c.heartbeat("1.0", policy_name="p", policy_version=n)
        c.heartbeat("1.0", policy_name="p", policy_version=BIG[0])
