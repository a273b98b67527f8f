"""The five Warden gRPC services, as thin servicers over :mod:`hub.handlers`.

Each module exposes ``endpoints(state) -> {method name: endpoint}`` (PolicyService also takes
the :class:`~hub.watch.WatchStreams` that serve Watch); :func:`build_handlers` registers them
through :func:`hub.rpc.service_handler`, which adds authentication (the
:data:`hub.auth.ACCESS` table), error mapping, reply size checks and access logs to every
method.
"""

from __future__ import annotations

import grpc

from hub.rpc import Runtime, service_handler
from hub.services import approval, enrollment, ledger, policy, root
from hub.state import HubState
from hub.watch import WatchStreams
from protos.warden.v1 import approval_pb2, enrollment_pb2, ledger_pb2, policy_pb2, root_pb2

__all__ = ["build_handlers"]


def build_handlers(
    state: HubState, runtime: Runtime, watch: WatchStreams
) -> list[grpc.GenericRpcHandler]:
    """One generic (grpc.aio) handler per service, bound to ``state``."""
    auth = state.auth
    return [
        service_handler(policy_pb2.DESCRIPTOR.services_by_name["PolicyService"],
                        policy.endpoints(state, watch), auth, runtime),
        service_handler(ledger_pb2.DESCRIPTOR.services_by_name["LedgerService"],
                        ledger.endpoints(state), auth, runtime),
        service_handler(enrollment_pb2.DESCRIPTOR.services_by_name["EnrollmentService"],
                        enrollment.endpoints(state), auth, runtime),
        service_handler(approval_pb2.DESCRIPTOR.services_by_name["ApprovalService"],
                        approval.endpoints(state), auth, runtime),
        service_handler(root_pb2.DESCRIPTOR.services_by_name["RootService"],
                        root.endpoints(state), auth, runtime),
    ]
