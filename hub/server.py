"""The hub process: a grpc.aio server with the five Warden services, health, limits and drain.

Invariants:

* TLS unless the config says ``insecure``, which :class:`~hub.config.HubConfig` only allows
  on loopback; plaintext start-up logs a warning. The certificate chain and key are loaded
  and checked to belong together *before* binding, so a bad file is a
  :class:`~trust.errors.ConfigError` naming it (not gRPC's "Failed to bind").
* One event loop (in a thread of its own, :class:`~hub.loop.EventLoopThread`) serves every
  call; blocking work runs in a pool of ``max_workers`` threads (:mod:`hub.rpc`). Watch
  streams park on the loop without a thread (:mod:`hub.watch`), capped overall
  (``max_watch_streams``) and per caller (``max_watch_streams_per_caller``), so open streams
  can never starve Append, GetCheckpoint or Heartbeat.
* Inbound and outbound messages are capped at ``max_message_bytes``; larger requests are
  refused by gRPC itself (``RESOURCE_EXHAUSTED``) before any handler runs, larger replies by
  :mod:`hub.rpc` (``RESOURCE_EXHAUSTED`` naming the size, logged as such).
* SIGTERM / SIGINT: the health service turns ``NOT_SERVING`` first (load balancers stop
  sending), Watch streams are told to end, the server stops accepting calls and in-flight
  calls get ``drain_s`` seconds to finish. An Append either committed (and was acknowledged)
  or did not: the store commits before the reply is sent, so a drain or a kill -9 never loses
  an acknowledged record. The store closes only after every worker thread has finished.
* The health service (``grpc.health.v1``) is the only unauthenticated endpoint besides Enroll.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import grpc
import grpc.aio
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from grpc_health.v1 import (  # no stubs published
    health,
    health_pb2,
    health_pb2_grpc,
)

from hub.config import HubConfig
from hub.loop import EventLoopThread
from hub.rpc import Runtime
from hub.services import build_handlers
from hub.services.policy import encode_update
from hub.state import HubState
from hub.watch import WatchStreams
from trust.errors import ConfigError
from trust.timeutil import format_time, utcnow

__all__ = ["RunningHub", "start", "serve"]

log = logging.getLogger("warden.hub.server")

SERVICE_NAMES = (
    "warden.v1.PolicyService",
    "warden.v1.LedgerService",
    "warden.v1.EnrollmentService",
    "warden.v1.ApprovalService",
    "warden.v1.RootService",
)


@dataclass
class RunningHub:
    """A started hub: its gRPC server, bound port and shared state.

    The server runs on its own event loop thread; :meth:`stop` may be called from any other
    thread (and more than once).
    """

    server: grpc.aio.Server
    port: int
    state: HubState
    health: Any  # grpc_health.v1.health.aio.HealthServicer (no stubs)
    watch: WatchStreams
    _loop: EventLoopThread = field(repr=False)
    _executor: ThreadPoolExecutor = field(repr=False)
    _stop_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _stopped: bool = field(default=False, repr=False)

    def stop(self, grace: float | None = None) -> None:
        """Drain and stop: health NOT_SERVING, end Watch streams, wait ``grace`` seconds."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        drain = self.state.config.drain_s if grace is None else grace
        try:
            self._loop.run(self._drain(drain))
        finally:
            self._loop.close()
            # Calls cut off by the drain may still be running in a worker: let them finish
            # before the store closes under them.
            self._executor.shutdown(wait=True, cancel_futures=True)
            self.state.close()

    async def _drain(self, grace: float) -> None:
        await self.health.enter_graceful_shutdown()
        self.state.stopping.set()
        self.watch.close()
        await self.server.stop(grace)


def _read_tls(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read TLS file {path}: {exc.strerror}") from None


def _credentials(config: HubConfig) -> grpc.ServerCredentials | None:
    """Server credentials from the TLS files, each checked first (``None`` if insecure)."""
    if config.insecure:
        return None
    assert config.tls is not None  # HubConfig guarantees tls unless insecure
    cert_path, key_path = config.tls.cert, config.tls.key
    cert_pem, key_pem = _read_tls(cert_path), _read_tls(key_path)
    hint = "'warden hub init DIR' makes a matching tls/server.crt and tls/server.key"
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise ConfigError(f"{cert_path}: not a PEM X.509 certificate (tls.cert)",
                          hint=hint) from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise ConfigError(f"{key_path}: the TLS private key is encrypted; the hub needs it "
                          "unencrypted (keep the file mode 0600)") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(f"{key_path}: not a PEM private key (tls.key)", hint=hint) from None
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != chain[0].public_key().public_bytes(*spki):
        raise ConfigError(f"{key_path}: the TLS private key does not match the certificate "
                          f"{cert_path}", hint=hint)
    if chain[0].not_valid_after_utc < utcnow():
        raise ConfigError(f"{cert_path}: the TLS certificate expired on "
                          f"{format_time(chain[0].not_valid_after_utc)}", hint=hint)
    return grpc.ssl_server_credentials([(key_pem, cert_pem)])


async def _listen(
    config: HubConfig, state: HubState, runtime: Runtime, creds: grpc.ServerCredentials | None
) -> tuple[grpc.aio.Server, int, Any, WatchStreams]:
    """Build the server on the running loop, bind, start, and mark every service SERVING."""
    watch = WatchStreams(state.store, state.feed, runtime.executor, encode_update,
                         max_streams=config.max_watch_streams,
                         max_per_caller=config.max_watch_streams_per_caller,
                         loop=asyncio.get_running_loop())
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", config.max_message_bytes),
        # Refuse a second server on the same port instead of silently sharing it.
        ("grpc.so_reuseport", 0),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ]
    # Streams are capped by WatchStreams; this bounds the unary calls queued for the pool.
    server = grpc.aio.server(
        options=options,
        maximum_concurrent_rpcs=config.max_watch_streams + config.max_workers * 4,
    )
    server.add_generic_rpc_handlers(build_handlers(state, runtime, watch))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    try:
        if creds is None:
            log.warning("plaintext gRPC (insecure) on %s: for local testing only", config.listen)
            port = server.add_insecure_port(config.listen)
        else:
            port = server.add_secure_port(config.listen, creds)
    except RuntimeError as exc:
        watch.close()
        raise ConfigError(f"cannot listen on {config.listen}: {exc}") from None
    if port == 0:
        watch.close()
        raise ConfigError(f"cannot listen on {config.listen} (address in use or not local)")
    await server.start()
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, port, health_servicer, watch


def start(config: HubConfig, state: HubState | None = None) -> RunningHub:
    """Check TLS files, open the store, bind the port (``:0`` picks a free one), serve.

    Returns once the hub listens; the server runs on a background event loop thread, so the
    caller stays synchronous.
    """
    creds = _credentials(config)  # before anything is opened: a bad file names itself
    state = state or HubState.open(config)
    executor = ThreadPoolExecutor(max_workers=config.max_workers, thread_name_prefix="rpc")
    runtime = Runtime(executor, config.max_message_bytes)
    loop = EventLoopThread()
    try:
        server, port, health_servicer, watch = loop.run(_listen(config, state, runtime, creds))
    except BaseException:
        loop.close()
        executor.shutdown(wait=True, cancel_futures=True)
        state.close()
        raise
    log.info("hub serving", extra={"fields": {"listen": config.listen, "port": port,
                                              "tls": creds is not None,
                                              "database": state.database_label,
                                              "verify_workers": state.verifier.workers,
                                              "max_watch_streams": config.max_watch_streams}})
    return RunningHub(server, port, state, health_servicer, watch, loop, executor)


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
    try:
        if on_ready is not None:
            on_ready(hub)
        done.wait()
    finally:
        hub.stop()
    log.info("hub stopped")
    return 0
