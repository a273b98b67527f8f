"""The hub's RPC plumbing: raw-bytes handlers, authentication, error mapping, access logs.

The server is ``grpc.aio``: one event loop multiplexes every call, so an open Watch stream
costs a coroutine, not a thread. Blocking work never runs on the loop: each call's
authentication (a database lookup and a signature check), parsing, endpoint and reply
serialization run in the hub's bounded worker pool (:class:`Runtime`).

Every method is registered through :func:`service_handler`, which wraps an endpoint so
that, in this order:

1. the request arrives as the exact bytes the client sent (no deserializer), so the node call
   signature is checked over those bytes (:mod:`protos.callsig`) — never over a re-encoding;
2. :class:`~hub.auth.Authenticator` identifies the caller and checks :data:`hub.auth.ACCESS`;
3. the bytes are parsed into the request message; garbage is ``INVALID_ARGUMENT``;
4. the endpoint runs; a :class:`~trust.errors.WardenError` becomes a status code through the
   one table in :mod:`protos.errors`; anything else is logged with its traceback and becomes
   a bare ``INTERNAL`` (no internals leak to the caller);
5. the reply is serialized here and measured: one over ``max_message_bytes`` fails the call
   with ``RESOURCE_EXHAUSTED`` naming its size (gRPC would otherwise drop it after the log
   said OK);
6. one JSON access-log line records method, caller, status and duration — the status the
   caller actually gets.

Two kinds of endpoint exist. A unary :data:`Endpoint` is plain synchronous code run in a
worker thread; its context is read-only (metadata, peer) because the call belongs to the
loop. A server-streaming :data:`StreamEndpoint` is an async generator run on the loop; it
must hand blocking work to the pool itself (as :mod:`hub.watch` does). Servicers therefore
never repeat auth or error handling, and there is no way to register a method that skips them.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import AsyncGenerator, Callable, Coroutine, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, NoReturn, cast

import grpc
import grpc.aio
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError, Message

from hub.auth import Authenticator, Principal
from protos.errors import MD_ERROR, MD_EXPECTED_SEQ, status_of
from trust.errors import FormatError, LimitExceededError, SequenceGapError, WardenError

__all__ = [
    "AioContext",
    "Endpoint",
    "ResourceLimitError",
    "Runtime",
    "StreamEndpoint",
    "service_handler",
]

log = logging.getLogger("warden.hub.rpc")

AioContext = grpc.aio.ServicerContext[Any, Any]
"""The context of a call on the event loop (streaming endpoints get it)."""

Endpoint = Callable[[Principal, Any, grpc.ServicerContext], Any]
"""A unary handler, run in a worker thread: principal, parsed request, context → response.

The context only answers ``invocation_metadata()`` and ``peer()``; errors are raised as
:class:`~trust.errors.WardenError`, never by aborting the context."""

StreamEndpoint = Callable[[Principal, Any, AioContext], AsyncGenerator[Message | bytes, None]]
"""A server-streaming handler: an async generator of messages (or their serialized bytes)."""


class ResourceLimitError(LimitExceededError):
    """A hub limit was reached (a stream cap, a reply size): ``RESOURCE_EXHAUSTED``."""


@dataclass(frozen=True)
class Runtime:
    """What the plumbing needs besides auth: the worker pool and the reply size limit."""

    executor: Executor
    max_message_bytes: int


def _wire_name(exc: WardenError) -> str:
    """The nearest class of ``exc`` that clients know (one of :mod:`trust.errors`)."""
    for cls in type(exc).__mro__:
        if cls.__module__ == "trust.errors":
            return cls.__name__
    return "WardenError"


async def _abort(context: AioContext, exc: WardenError) -> NoReturn:
    trailing = [(MD_ERROR, _wire_name(exc))]
    if isinstance(exc, SequenceGapError):
        trailing.append((MD_EXPECTED_SEQ, str(exc.expected)))
    context.set_trailing_metadata(tuple(trailing))
    await context.abort(status_of(exc), exc.message)
    raise AssertionError("unreachable: abort raises")


def _log(method: str, principal: Principal | None, code: str, start: float, **extra: Any) -> None:
    log.info(
        "rpc",
        extra={
            "fields": {
                "method": method,
                "caller": str(principal) if principal else "unauthenticated",
                "code": code,
                "ms": round((time.monotonic() - start) * 1000, 2),
                **extra,
            }
        },
    )


class _ThreadContext:
    """The read-only view of a call that a unary endpoint gets in its worker thread."""

    def __init__(self, metadata: Sequence[tuple[str, str | bytes]], peer: str) -> None:
        self._metadata = tuple(metadata)
        self._peer = peer

    def invocation_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        """The call's metadata, as the client sent it."""
        return self._metadata

    def peer(self) -> str:
        """The client's address."""
        return self._peer


class _Call:
    """One call's progress, shared between the loop and the worker thread that serves it."""

    def __init__(self, method: str, request_cls: type[Message], auth: Authenticator,
                 context: AioContext) -> None:
        self.method = method
        self.start = time.monotonic()
        self.principal: Principal | None = None
        self._request_cls = request_cls
        self._auth = auth
        metadata = [(str(k), v) for k, v in (context.invocation_metadata() or ())]
        self.context = _ThreadContext(metadata, context.peer())

    def authenticate(self, raw: bytes) -> tuple[Principal, Message]:
        """Identify the caller (remembered for the log) and parse the request (worker thread)."""
        principal = self._auth.authenticate(self.method, self.context.invocation_metadata(), raw)
        self.principal = principal
        return principal, _parse(self._request_cls, raw, self.method)

    def log(self, code: str, **extra: Any) -> None:
        """The call's access-log line."""
        _log(self.method, self.principal, code, self.start, **extra)


def _encode(method: str, item: Message | bytes, limit: int) -> bytes:
    body = item if isinstance(item, bytes) else item.SerializeToString()
    if len(body) > limit:
        raise ResourceLimitError(
            f"{method}: the reply is {len(body)} bytes, over the hub's max_message_bytes {limit}",
            hint="ask for less (a smaller limit or page)")
    return body


async def _fail(call: _Call, context: AioContext, exc: BaseException, **extra: Any) -> NoReturn:
    """Log and end the call with the status ``exc`` maps to; re-raise what is not ours."""
    if isinstance(exc, grpc.aio.AbortError):
        raise exc  # the call already ended with its status
    if isinstance(exc, asyncio.CancelledError):
        call.log("CANCELLED", **extra)
        raise exc
    if isinstance(exc, WardenError):
        call.log(status_of(exc).name, error=exc.message, **extra)
        await _abort(context, exc)
    if isinstance(exc, Exception):
        log.error("internal error in %s", call.method, exc_info=exc)
        call.log("INTERNAL", **extra)
        await context.abort(grpc.StatusCode.INTERNAL, "internal error (see hub log)")
    raise exc


def _unary(
    method: str, request_cls: type[Message], endpoint: Endpoint, auth: Authenticator,
    runtime: Runtime,
) -> Callable[[bytes, AioContext], Coroutine[Any, Any, bytes]]:
    def serve(call: _Call, raw: bytes) -> bytes:  # in a worker thread
        principal, request = call.authenticate(raw)
        # Endpoints are typed for grpc.ServicerContext; they get the read-only view, so an
        # attempt to abort from a thread fails loudly (INTERNAL) instead of racing the loop.
        response = endpoint(principal, request, cast(grpc.ServicerContext, call.context))
        return _encode(method, response, runtime.max_message_bytes)

    async def behavior(raw: bytes, context: AioContext) -> bytes:
        call = _Call(method, request_cls, auth, context)
        try:
            body = await asyncio.get_running_loop().run_in_executor(
                runtime.executor, serve, call, raw)
        except BaseException as exc:  # noqa: BLE001 - _fail logs, maps and re-raises
            await _fail(call, context, exc)
        call.log("OK", bytes=len(body))
        return body

    return behavior


def _stream(
    method: str, request_cls: type[Message], endpoint: StreamEndpoint, auth: Authenticator,
    runtime: Runtime,
) -> Callable[[bytes, AioContext], Coroutine[Any, Any, None]]:
    async def behavior(raw: bytes, context: AioContext) -> None:
        call = _Call(method, request_cls, auth, context)
        try:
            principal, request = await asyncio.get_running_loop().run_in_executor(
                runtime.executor, call.authenticate, raw)
        except BaseException as exc:  # noqa: BLE001 - _fail logs, maps and re-raises
            await _fail(call, context, exc)
        call.log("OPEN")
        sent = 0
        try:
            async with contextlib.aclosing(endpoint(principal, request, context)) as items:
                async for item in items:
                    await context.write(_encode(method, item, runtime.max_message_bytes))
                    sent += 1
        except asyncio.CancelledError:
            call.log("CLOSED", sent=sent)  # the client went away
            raise
        except BaseException as exc:  # noqa: BLE001 - _fail logs, maps and re-raises
            if context.done() and not isinstance(exc, WardenError):
                # The write failed because the call is already over (client gone).
                call.log("CLOSED", sent=sent, error=type(exc).__name__)
                return
            await _fail(call, context, exc, sent=sent)
        call.log("OK", sent=sent)

    return behavior


def _parse(cls: type[Message], raw: bytes, method: str) -> Message:
    try:
        return cls.FromString(raw)
    except DecodeError as exc:
        raise FormatError(f"{method}: request is not a valid protobuf message ({exc})") from None


def service_handler(
    service: ServiceDescriptor,
    endpoints: Mapping[str, Endpoint | StreamEndpoint],
    auth: Authenticator,
    runtime: Runtime,
) -> grpc.GenericRpcHandler:
    """A gRPC (aio) handler for every method of ``service``; each must have an endpoint.

    Unary methods need a plain function, server-streaming ones an async generator function.
    """
    missing = {m.name for m in service.methods} - set(endpoints)
    extra = set(endpoints) - {m.name for m in service.methods}
    if missing or extra:
        raise ValueError(f"{service.full_name}: missing {sorted(missing)}, unknown {sorted(extra)}")
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for m in service.methods:
        method = f"/{service.full_name}/{m.name}"
        request_cls = message_factory.GetMessageClass(m.input_type)
        ep = endpoints[m.name]
        if m.server_streaming != inspect.isasyncgenfunction(ep) or inspect.iscoroutinefunction(ep):
            kind = "an async generator function" if m.server_streaming else "a plain function"
            raise ValueError(f"{method}: the endpoint must be {kind}")
        # Replies are serialized (and measured) by the wrappers: no response serializer.
        if m.server_streaming:
            handlers[m.name] = grpc.unary_stream_rpc_method_handler(
                _stream(method, request_cls, cast(StreamEndpoint, ep), auth, runtime))
        else:
            handlers[m.name] = grpc.unary_unary_rpc_method_handler(
                _unary(method, request_cls, cast(Endpoint, ep), auth, runtime))
    return grpc.method_handlers_generic_handler(service.full_name, handlers)
