"""RootService: Publish, GetChain."""

from __future__ import annotations

import grpc

from hub import handlers, serde
from hub.auth import Principal
from hub.rpc import Endpoint
from hub.state import HubState
from protos import serde as wire
from protos.warden.v1 import root_pb2 as pb

__all__ = ["endpoints"]


def endpoints(state: HubState) -> dict[str, Endpoint]:
    """Endpoints bound to ``state``."""

    def publish(
        p: Principal, req: pb.PublishRootRequest, ctx: grpc.ServicerContext
    ) -> pb.PublishRootResponse:
        rec = handlers.publish_root(state, req.envelope)
        return wire.root_publish_result_to_proto(serde.root_publish_result(rec))

    def get_chain(
        p: Principal, req: pb.GetRootChainRequest, ctx: grpc.ServicerContext
    ) -> pb.GetRootChainResponse:
        roots, latest = handlers.root_chain(state, req.after_version)
        return wire.root_chain_to_proto((r.envelope for r in roots), latest)

    return {"Publish": publish, "GetChain": get_chain}
