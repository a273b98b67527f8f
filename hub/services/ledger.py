"""LedgerService: Append, GetCheckpoint, GetEntries, GetInclusionProof, GetConsistencyProof."""

from __future__ import annotations

import grpc

from hub import handlers, serde
from hub.auth import Principal
from hub.rpc import Endpoint
from hub.state import HubState
from protos import serde as wire
from protos.types import ConsistencyProof, InclusionProof
from protos.warden.v1 import ledger_pb2 as pb

__all__ = ["endpoints"]


def endpoints(state: HubState) -> dict[str, Endpoint]:
    """Endpoints bound to ``state``."""

    def append(p: Principal, req: pb.AppendRequest, ctx: grpc.ServicerContext) -> pb.AppendResponse:
        r = handlers.append(state, p.node_id, list(req.envelopes))
        return wire.append_result_to_proto(serde.append_result(r))

    def get_checkpoint(
        p: Principal, req: pb.GetCheckpointRequest, ctx: grpc.ServicerContext
    ) -> pb.GetCheckpointResponse:
        size = req.tree_size if req.HasField("tree_size") else None
        cp = handlers.checkpoint(state, size)
        return pb.GetCheckpointResponse(checkpoint=wire.checkpoint_to_proto(cp.note))

    def get_entries(
        p: Principal, req: pb.GetEntriesRequest, ctx: grpc.ServicerContext
    ) -> pb.GetEntriesResponse:
        limit = req.limit if req.HasField("limit") else None
        rows, size = handlers.entries(state, req.start, limit)
        return wire.entries_page_to_proto(rows, size)

    def get_inclusion_proof(
        p: Principal, req: pb.GetInclusionProofRequest, ctx: grpc.ServicerContext
    ) -> pb.GetInclusionProofResponse:
        size = req.tree_size if req.HasField("tree_size") else None
        tree_size, leaf, proof = handlers.inclusion_proof(state, req.index, size)
        return wire.inclusion_proof_to_proto(
            InclusionProof(req.index, tree_size, leaf, tuple(proof)))

    def get_consistency_proof(
        p: Principal, req: pb.GetConsistencyProofRequest, ctx: grpc.ServicerContext
    ) -> pb.GetConsistencyProofResponse:
        new = req.new_size if req.HasField("new_size") else None
        new_size, proof = handlers.consistency_proof(state, req.old_size, new)
        return wire.consistency_proof_to_proto(
            ConsistencyProof(req.old_size, new_size, tuple(proof)))

    return {
        "Append": append,
        "GetCheckpoint": get_checkpoint,
        "GetEntries": get_entries,
        "GetInclusionProof": get_inclusion_proof,
        "GetConsistencyProof": get_consistency_proof,
    }
