"""The access log records a reply that could not be sent as a failure (issue 8, item 10).

Before the fix, a GetEntries page over ``max_message_bytes`` reached the client as gRPC's own
``Sent message larger than max`` while the hub's access log said ``OK``. The hub now measures
the serialized reply before sending it and fails the call with RESOURCE_EXHAUSTED naming the
size and the limit — in the reply and in the access-log line.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from hub.config import Role
from protos.warden.v1 import ledger_pb2
from tests.sim import SimNode
from trust.errors import WardenError

from .harness import enroll, make_world, node_client, operator, running_hub

LIMIT = 32 * 1024


def _record_of_size(node: SimNode, low: int, high: int) -> bytes:
    """A valid first record of ``node`` whose envelope is between ``low`` and ``high`` bytes."""

    def make(pad: int) -> bytes:
        assert node.seq == 0
        return node.record(evidence={"pad": "x" * pad}, advance=False)

    pad = max(0, (high - len(make(0))) * 3 // 4 - 8)
    env = make(pad)
    while len(env) < low:
        pad += 1
        env = make(pad)
    assert low <= len(env) <= high, len(env)
    return env


def test_a_reply_too_large_to_send_is_logged_as_a_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world = make_world(tmp_path)
    world.config = dataclasses.replace(world.config, max_message_bytes=LIMIT,
                                       verify_workers=0)
    node = SimNode("emea-1")
    with running_hub(world) as hub:
        enroll(world, hub, node)
        # The Append request fits under the limit; the entry page holding it (envelope plus
        # index, hashes, kind, node id, time) does not — even a page of one entry.
        envelope = _record_of_size(node, LIMIT - 60, LIMIT - 20)
        assert len(ledger_pb2.AppendRequest(envelopes=[envelope]).SerializeToString()) <= LIMIT
        with node_client(world, hub, node) as c:
            index = c.append([envelope]).acks[0].index
        caplog.set_level(logging.INFO, logger="warden.hub.rpc")
        with operator(world, hub, Role.AUDITOR) as a, pytest.raises(WardenError) as info:
            a.get_entries(index, limit=1)
    assert f"max_message_bytes {LIMIT}" in info.value.message, info.value.message
    lines = [getattr(r, "fields", {}) for r in caplog.records if r.name == "warden.hub.rpc"]
    calls = [f for f in lines if f.get("method") == "/warden.v1.LedgerService/GetEntries"]
    assert len(calls) == 1, lines
    assert calls[0]["code"] == "RESOURCE_EXHAUSTED", calls[0]
    assert f"max_message_bytes {LIMIT}" in calls[0]["error"]
