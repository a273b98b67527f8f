"""PolicyService: Publish, Get, Watch."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import grpc

from hub import handlers, serde
from hub.auth import Principal
from hub.limits import bounded_optional
from hub.rpc import AioContext, Endpoint, StreamEndpoint
from hub.state import HubState
from hub.watch import WatchStreams
from protos import serde as wire
from protos.types import PolicyRecord
from protos.warden.v1 import policy_pb2 as pb

__all__ = ["encode_update", "endpoints"]


def encode_update(record: PolicyRecord) -> bytes:
    """The serialized ``PolicyUpdate`` a Watch stream sends for ``record``."""
    return wire.policy_record_to_proto(record).SerializeToString()


def endpoints(state: HubState, watch: WatchStreams) -> dict[str, Endpoint | StreamEndpoint]:
    """Endpoints bound to ``state``; Watch streams are served (and capped) by ``watch``."""

    def publish(
        p: Principal, req: pb.PublishRequest, ctx: grpc.ServicerContext
    ) -> pb.PublishResponse:
        rec = handlers.publish(state, req.envelope)
        return wire.publish_result_to_proto(serde.publish_result(rec))

    def get(
        p: Principal, req: pb.GetPolicyRequest, ctx: grpc.ServicerContext
    ) -> pb.GetPolicyResponse:
        version = req.version if req.HasField("version") else None
        if_none_match = bounded_optional("revision", req.if_none_match or None)
        rec = handlers.get_policy(state, req.name or None, version)
        if if_none_match and if_none_match == rec.revision:
            return pb.GetPolicyResponse(not_modified=True)
        return pb.GetPolicyResponse(bundle=wire.policy_record_to_proto(rec))

    async def watch_(
        p: Principal, req: pb.WatchPolicyRequest, ctx: AioContext
    ) -> AsyncGenerator[bytes, None]:
        # Runs on the event loop: parked between publications without holding a thread.
        # The name is bounded here: Watch does not go through hub.handlers (item 14).
        name = bounded_optional("name", req.name or None)
        after = req.after_version if req.HasField("after_version") else None
        async for update in watch.updates(str(p), name, after):
            yield update

    return {"Publish": publish, "Get": get, "Watch": watch_}
