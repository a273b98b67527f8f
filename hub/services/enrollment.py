"""EnrollmentService: Enroll, RotateKey, Heartbeat."""

from __future__ import annotations

import grpc

from hub import handlers, serde
from hub.auth import Principal
from hub.rpc import Endpoint
from hub.state import HubState
from protos import serde as wire
from protos.types import HeartbeatResult
from protos.warden.v1 import enrollment_pb2 as pb

__all__ = ["endpoints"]


def endpoints(state: HubState) -> dict[str, Endpoint]:
    """Endpoints bound to ``state``."""

    def enroll(p: Principal, req: pb.EnrollRequest, ctx: grpc.ServicerContext) -> pb.EnrollResponse:
        r = handlers.enroll(state, req.node_id, req.public_key, req.token,
                            signed_at=req.time, signature=req.signature,
                            agent_version=req.agent_version)
        e = serde.enroll_result(r)
        return pb.EnrollResponse(index=e.index, envelope=e.envelope,
                                 checkpoint=wire.checkpoint_to_proto(e.checkpoint))

    def rotate_key(
        p: Principal, req: pb.RotateKeyRequest, ctx: grpc.ServicerContext
    ) -> pb.RotateKeyResponse:
        r = handlers.rotate_key(state, p.node_id, req.new_public_key, req.old_key_signature,
                                req.new_key_signature)
        e = serde.enroll_result(r)
        return pb.RotateKeyResponse(index=e.index, envelope=e.envelope,
                                    checkpoint=wire.checkpoint_to_proto(e.checkpoint))

    def heartbeat(
        p: Principal, req: pb.HeartbeatRequest, ctx: grpc.ServicerContext
    ) -> pb.HeartbeatResponse:
        latest = handlers.heartbeat(
            state,
            p.node_id,
            req.agent_version,
            req.policy_name if req.HasField("policy_name") else None,
            req.policy_version if req.HasField("policy_version") else None,
        )
        return wire.heartbeat_result_to_proto(HeartbeatResult(state.now(), latest))

    return {"Enroll": enroll, "RotateKey": rotate_key, "Heartbeat": heartbeat}
