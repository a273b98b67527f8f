"""Each ledger RPC says what was out of range in its own terms (issue 8, item 21).

``warden hub proof inclusion 42`` beyond the ledger used to answer "start 42 is beyond the end
of the ledger" — a GetEntries message about a flag the user never passed.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hub.config import Role
from hub.server import RunningHub
from protos.client import HubClient
from tests.sim import SimNode
from trust.errors import NotFoundError, UsageError, WardenError

from .harness import HubWorld, enroll, node_client, operator

# (what is asked, the call, the message expected) on a ledger of 4 entries; NotFoundError
# unless the arguments contradict each other (UsageError).
CASES: list[tuple[str, Callable[[HubClient], object], str]] = [
    ("inclusion of index 42", lambda c: c.inclusion_proof(42),
     "index 42 is beyond the ledger of size 4"),
    ("inclusion of index 4 (one past the end)", lambda c: c.inclusion_proof(4),
     "index 4 is beyond the ledger of size 4"),
    ("inclusion in a tree larger than the ledger", lambda c: c.inclusion_proof(0, 99),
     "tree_size 99 is beyond the ledger of size 4"),
    ("inclusion of an index outside the asked tree", lambda c: c.inclusion_proof(3, 2),
     "index 3 is not in the tree of size 2"),
    ("entries from 42", lambda c: c.get_entries(42, 1),
     "start 42 is beyond the ledger of size 4"),
    ("consistency from 42", lambda c: c.consistency_proof(42),
     "old_size 42 is beyond the ledger of size 4"),
    ("consistency to a size beyond the ledger", lambda c: c.consistency_proof(2, 99),
     "new_size 99 is beyond the ledger of size 4"),
    ("consistency from a larger to a smaller tree", lambda c: c.consistency_proof(3, 2),
     "old_size 3 is larger than new_size 2"),
]


def test_each_ledger_rpc_names_its_own_out_of_range_argument(
    world: HubWorld, hub: RunningHub
) -> None:
    node = SimNode("emea-1")
    enroll(world, hub, node)
    with node_client(world, hub, node) as c:
        c.append(node.records(3))
    assert hub.state.store.size() == 4
    failures: list[str] = []
    with operator(world, hub, Role.AUDITOR) as c:
        for what, call, expected in CASES:
            with pytest.raises(WardenError) as info:
                call(c)
            kind = UsageError if "larger than" in expected else NotFoundError
            if type(info.value) is not kind or expected not in info.value.message:
                failures.append(f"{what}: {type(info.value).__name__}: {info.value.message}")
        assert c.inclusion_proof(3).tree_size == 4  # in range still works
    assert not failures, "\n".join(failures)
