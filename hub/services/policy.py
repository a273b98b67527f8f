"""PolicyService: Publish, Get, Watch."""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from hub import handlers, serde
from hub.auth import Principal
from hub.rpc import Endpoint
from hub.state import HubState
from protos.warden.v1 import policy_pb2 as pb

__all__ = ["endpoints"]


def endpoints(state: HubState) -> dict[str, Endpoint]:
    """Endpoints bound to ``state``."""

    def publish(
        p: Principal, req: pb.PublishRequest, ctx: grpc.ServicerContext
    ) -> pb.PublishResponse:
        rec = handlers.publish(state, req.envelope)
        return pb.PublishResponse(name=rec.name, version=rec.version,
                                  revision=serde.revision_of(rec), digest=rec.digest,
                                  index=rec.ledger_idx)

    def get(
        p: Principal, req: pb.GetPolicyRequest, ctx: grpc.ServicerContext
    ) -> pb.GetPolicyResponse:
        version = req.version if req.HasField("version") else None
        rec = handlers.get_policy(state, req.name or None, version)
        if req.if_none_match and req.if_none_match == serde.revision_of(rec):
            return pb.GetPolicyResponse(not_modified=True)
        return pb.GetPolicyResponse(bundle=serde.policy_to_proto(rec))

    def watch(
        p: Principal, req: pb.WatchPolicyRequest, ctx: grpc.ServicerContext
    ) -> Iterator[pb.PolicyUpdate]:
        # Wake this stream's wait as soon as the client goes away.
        ctx.add_callback(state.feed.wake_all)
        after = req.after_version if req.HasField("after_version") else None
        for rec in handlers.watch_policies(state, req.name or None, after, ctx.is_active):
            yield serde.policy_to_proto(rec)

    return {"Publish": publish, "Get": get, "Watch": watch}
