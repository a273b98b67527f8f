"""Watch streams are parked without a thread each and capped (issue 8, item 7).

Before the fix every open Watch stream held one of the hub's 64 worker threads, so 66 streams
from one caller made Append, GetCheckpoint and Heartbeat time out. Here 500 streams stay open
(over a few multiplexed channels, client side on grpc.aio) while unary calls answer well under
a second, and every stream still gets the next publication. The caps refuse one stream more
with RESOURCE_EXHAUSTED naming the cap and its value, and a closed stream frees its slot.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import grpc
import grpc.aio
import pytest

from hub.config import Role
from hub.server import RunningHub
from protos.callsig import sign_call
from protos.warden.v1 import policy_pb2
from tests.sim import SimNode

from .harness import (
    HubWorld,
    bundle,
    enroll,
    make_world,
    node_client,
    operator,
    running_hub,
    wait_for,
)

WATCH = "/warden.v1.PolicyService/Watch"
Stream = grpc.aio.UnaryStreamCall[bytes, policy_pb2.PolicyUpdate]


def _world(tmp: Path, *, total: int = 4096, per_caller: int = 16) -> HubWorld:
    # No verifier processes: these tests append almost nothing, and start-up stays fast.
    w = make_world(tmp)
    w.config = dataclasses.replace(w.config, max_watch_streams=total, verify_workers=0,
                                   max_watch_streams_per_caller=per_caller)
    return w


@pytest.fixture
def capped(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[HubWorld, RunningHub]]:
    """A hub whose caps are ``request.param`` = (max_watch_streams, per caller)."""
    total, per_caller = request.param
    world = _world(tmp_path, total=total, per_caller=per_caller)
    with running_hub(world) as hub:
        yield world, hub


def _open(channel: grpc.aio.Channel, caller: SimNode | str, after: int | None = None) -> Stream:
    """Open one Watch stream of ``standard`` as a node (signed) or an operator (token)."""
    req = policy_pb2.WatchPolicyRequest(name="standard")
    if after is not None:
        req.after_version = after
    body = req.SerializeToString()
    fn: grpc.aio.UnaryStreamMultiCallable[bytes, policy_pb2.PolicyUpdate] = channel.unary_stream(
        WATCH, request_serializer=None, response_deserializer=policy_pb2.PolicyUpdate.FromString)
    if isinstance(caller, SimNode):
        metadata = sign_call(caller.key, WATCH, caller.node_id, body)
    else:
        metadata = (("authorization", f"Bearer {caller}"),)
    call: Stream = fn(body, metadata=metadata)
    return call


def _channel(world: HubWorld, hub: RunningHub) -> grpc.aio.Channel:
    return grpc.aio.secure_channel(f"127.0.0.1:{hub.port}",
                                   grpc.ssl_channel_credentials(world.ca))


async def _next_versions(streams: Sequence[Stream], timeout: float) -> list[int]:
    """The version of the next update on every stream (all read concurrently)."""

    async def one(s: Stream) -> int:
        msg = await s.read()
        assert isinstance(msg, policy_pb2.PolicyUpdate), f"stream ended: {await s.code()}"
        return msg.version

    return list(await asyncio.wait_for(asyncio.gather(*(one(s) for s in streams)), timeout))


async def _refusal(stream: Stream) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stream.read()
    return info.value.code(), info.value.details() or ""


async def _cancel(streams: Sequence[Stream]) -> None:
    """Cancel ``streams`` and wait until each has ended on the client side."""
    for s in streams:
        s.cancel()
    assert set(await asyncio.gather(*(s.code() for s in streams))) == {grpc.StatusCode.CANCELLED}


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


def test_500_watch_streams_do_not_starve_unary_calls_and_all_get_the_next_bundle(
    tmp_path: Path,
) -> None:
    nodes = [SimNode("emea-1"), SimNode("apac-1")]
    world = _world(tmp_path, total=500, per_caller=100)
    with running_hub(world) as hub:
        for n in nodes:
            enroll(world, hub, n)
        with operator(world, hub, Role.COMPLIANCE) as c:
            c.publish(bundle(1, world.officers.policy[:2]))
        auditor = operator(world, hub, Role.AUDITOR)
        writer = node_client(world, hub, nodes[0])

        unary: dict[str, Callable[[], object]] = {
            "GetCheckpoint": auditor.get_checkpoint,
            "Heartbeat": lambda: writer.heartbeat("1.0", policy_name="standard", policy_version=1),
            "Append": lambda: writer.append(nodes[0].records(1)),
        }

        async def scenario() -> None:
            channels = [_channel(world, hub) for _ in range(4)]
            # Five callers: two agents and the three operator roles, 100 streams each.
            callers: list[SimNode | str] = [*nodes, *world.init.tokens.values()]
            streams = [_open(channels[i % 4], c) for c in callers for i in range(100)]
            # Every stream is open and served: each gets the current bundle first.
            assert await _next_versions(streams, timeout=30) == [1] * 500
            assert hub.watch.open_streams() == 500
            # Unary calls are not starved (the old hub: DEADLINE_EXCEEDED after 64 streams).
            took = [(name, await asyncio.to_thread(_timed, fn))
                    for _ in range(3) for name, fn in unary.items()]
            slowest = max(took, key=lambda t: t[1])
            assert slowest[1] < 0.5, f"{slowest[0]} took {slowest[1]:.3f} s with 500 streams open"
            with operator(world, hub, Role.COMPLIANCE) as c:
                await asyncio.to_thread(c.publish, bundle(2, world.officers.policy[:2]))
            assert await _next_versions(streams, timeout=10) == [2] * 500
            await _cancel(streams)
            for ch in channels:
                await ch.close()

        try:
            asyncio.run(scenario())
            wait_for(lambda: hub.watch.open_streams() == 0)
        finally:
            auditor.close()
            writer.close()


@pytest.mark.parametrize("capped", [(3, 2)], indirect=True)
def test_watch_caps_refuse_one_stream_more_and_a_closed_stream_frees_its_slot(
    capped: tuple[HubWorld, RunningHub],
) -> None:
    world, hub = capped
    a, b = SimNode("emea-1"), SimNode("apac-1")
    enroll(world, hub, a)
    enroll(world, hub, b)
    with operator(world, hub, Role.COMPLIANCE) as c:
        c.publish(bundle(1, world.officers.policy[:2]))

    async def scenario() -> None:
        async with _channel(world, hub) as ch:
            a1, a2 = _open(ch, a), _open(ch, a)
            assert await _next_versions([a1, a2], timeout=5) == [1, 1]
            code, details = await _refusal(_open(ch, a))
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "max_watch_streams_per_caller 2" in details and "node:emea-1" in details
            b1 = _open(ch, b)
            assert await _next_versions([b1], timeout=5) == [1]
            code, details = await _refusal(_open(ch, b))
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "max_watch_streams 3" in details
            # Closing a stream frees its slot, for another caller too.
            a1.cancel()
            await asyncio.to_thread(wait_for, lambda: hub.watch.open_streams() == 2)
            b2 = _open(ch, b)
            assert await _next_versions([b2], timeout=5) == [1]
            assert hub.watch.open_streams("node:apac-1") == 2
            await _cancel([a2, b1, b2])

    asyncio.run(scenario())
    wait_for(lambda: hub.watch.open_streams() == 0)


def test_stopping_the_hub_ends_open_watch_streams_at_once(tmp_path: Path) -> None:
    world = _world(tmp_path)
    world.config = dataclasses.replace(world.config, drain_s=30.0)
    node = SimNode("emea-1")
    with running_hub(world) as hub:  # its exit stops again: stop() is idempotent
        enroll(world, hub, node)
        with operator(world, hub, Role.COMPLIANCE) as c:
            c.publish(bundle(1, world.officers.policy[:2]))

        async def scenario() -> None:
            async with _channel(world, hub) as ch:
                streams = [_open(ch, node) for _ in range(3)]
                assert await _next_versions(streams, timeout=5) == [1, 1, 1]
                t0 = time.monotonic()
                await asyncio.to_thread(hub.stop)
                # Streams are told to end (OK), not cancelled after the 30 s drain.
                assert time.monotonic() - t0 < 5
                for s in streams:
                    assert await s.read() is grpc.aio.EOF
                    assert await s.code() == grpc.StatusCode.OK

        asyncio.run(scenario())


def test_a_huge_watch_name_is_refused_without_being_echoed(tmp_path: Path) -> None:
    world = _world(tmp_path)
    node = SimNode("emea-1")
    with running_hub(world) as hub:
        enroll(world, hub, node)

        async def scenario() -> None:
            async with _channel(world, hub) as ch:
                req = policy_pb2.WatchPolicyRequest(name="n" * 1_000_000)
                body = req.SerializeToString()
                fn: grpc.aio.UnaryStreamMultiCallable[bytes, policy_pb2.PolicyUpdate] = (
                    ch.unary_stream(WATCH, request_serializer=None,
                                    response_deserializer=policy_pb2.PolicyUpdate.FromString))
                call = fn(body, metadata=sign_call(node.key, WATCH, node.node_id, body))
                code, details = await _refusal(call)
                assert code == grpc.StatusCode.INVALID_ARGUMENT
                assert "limit is 128" in details and len(details) < 300
            assert hub.watch.open_streams() == 0

        asyncio.run(scenario())
