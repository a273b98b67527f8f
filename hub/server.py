"""The hub process: a gRPC server with the four Warden services, health, limits and drain.

Invariants:

* TLS unless the config says ``insecure``, which :class:`~hub.config.HubConfig` only allows
  on loopback; plaintext start-up logs a warning.
* Inbound and outbound messages are capped at ``max_message_bytes``; larger requests are
  refused by gRPC itself (``RESOURCE_EXHAUSTED``) before any handler runs.
* SIGTERM / SIGINT: the health service turns ``NOT_SERVING`` first (load balancers stop
  sending), Watch streams are told to end, the server stops accepting calls and in-flight
  calls get ``drain_s`` seconds to finish. An Append either committed (and was acknowledged)
  or did not: the store commits before the reply is sent, so a drain or a kill -9 never loses
  an acknowledged record.
* The health service (``grpc.health.v1``) is the only unauthenticated endpoint besides Enroll.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from types import FrameType
from typing import Any

import grpc
from grpc_health.v1 import (  # no stubs published
    health,
    health_pb2,
    health_pb2_grpc,
)

from hub.config import HubConfig
from hub.services import build_handlers
from hub.state import HubState
from trust.errors import ConfigError

__all__ = ["RunningHub", "start", "serve"]

log = logging.getLogger("warden.hub.server")

SERVICE_NAMES = (
    "warden.v1.PolicyService",
    "warden.v1.LedgerService",
    "warden.v1.EnrollmentService",
    "warden.v1.ApprovalService",
)


@dataclass
class RunningHub:
    """A started hub: its gRPC server, bound port and shared state."""

    server: grpc.Server
    port: int
    state: HubState
    health: health.HealthServicer

    def stop(self, grace: float | None = None) -> None:
        """Drain and stop: health NOT_SERVING, end Watch streams, wait ``grace`` seconds."""
        self.health.enter_graceful_shutdown()
        self.state.stopping.set()
        self.state.feed.wake_all()
        event = self.server.stop(self.state.config.drain_s if grace is None else grace)
        event.wait()
        self.state.close()


def _credentials(config: HubConfig) -> grpc.ServerCredentials | None:
    if config.insecure:
        return None
    assert config.tls is not None  # HubConfig guarantees tls unless insecure
    try:
        cert = config.tls.cert.read_bytes()
        key = config.tls.key.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read TLS file {exc.filename}: {exc.strerror}") from None
    return grpc.ssl_server_credentials([(key, cert)])


def start(config: HubConfig, state: HubState | None = None) -> RunningHub:
    """Open the store, bind the port (``:0`` picks a free one) and start serving."""
    state = state or HubState.open(config)
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", config.max_message_bytes),
        # Refuse a second server on the same port instead of silently sharing it.
        ("grpc.so_reuseport", 0),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.max_workers, thread_name_prefix="rpc"),
        options=options,
        maximum_concurrent_rpcs=config.max_workers * 4,
    )
    server.add_generic_rpc_handlers(build_handlers(state))
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    creds = _credentials(config)
    try:
        if creds is None:
            log.warning("plaintext gRPC (insecure) on %s: for local testing only", config.listen)
            port = server.add_insecure_port(config.listen)
        else:
            port = server.add_secure_port(config.listen, creds)
    except RuntimeError as exc:
        state.close()
        raise ConfigError(f"cannot listen on {config.listen}: {exc}") from None
    if port == 0:
        state.close()
        raise ConfigError(f"cannot listen on {config.listen} (address in use or not local)")
    server.start()
    for name in ("", *SERVICE_NAMES):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("hub serving", extra={"fields": {"listen": config.listen, "port": port,
                                              "tls": creds is not None,
                                              "database": state.database_label,
                                              "verify_workers": state.verifier.workers}})
    return RunningHub(server, port, state, health_servicer)


def serve(config: HubConfig, *, on_ready: Callable[[RunningHub], None] | None = None) -> int:
    """Run until SIGTERM or SIGINT, then drain. Returns the process exit code."""
    hub = start(config)
    done = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal received, draining", extra={"fields": {"signal": signum,
                                                                "drain_s": config.drain_s}})
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if on_ready is not None:
        on_ready(hub)
    done.wait()
    hub.stop()
    log.info("hub stopped")
    return 0
