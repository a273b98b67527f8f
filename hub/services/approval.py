"""ApprovalService: Submit, List."""

from __future__ import annotations

import grpc

from hub import handlers, serde
from hub.auth import Principal
from hub.rpc import Endpoint
from hub.state import HubState
from protos import serde as wire
from protos.warden.v1 import approval_pb2 as pb

__all__ = ["endpoints"]


def endpoints(state: HubState) -> dict[str, Endpoint]:
    """Endpoints bound to ``state``."""

    def submit(
        p: Principal, req: pb.SubmitApprovalRequest, ctx: grpc.ServicerContext
    ) -> pb.SubmitApprovalResponse:
        _, rec = handlers.submit_approval(state, req.envelope)
        return wire.approval_receipt_to_proto(serde.approval_receipt(rec))

    def list_(
        p: Principal, req: pb.ListApprovalsRequest, ctx: grpc.ServicerContext
    ) -> pb.ListApprovalsResponse:
        limit = req.limit if req.HasField("limit") else None
        recs = handlers.approvals(state, req.role or None, req.subject or None, limit)
        return pb.ListApprovalsResponse(approvals=[wire.approval_record_to_proto(r) for r in recs])

    return {"Submit": submit, "List": list_}
