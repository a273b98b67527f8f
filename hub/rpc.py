"""The hub's RPC plumbing: raw-bytes handlers, authentication, error mapping, access logs.

Every method is registered through :func:`service_handler`, which wraps a plain endpoint
``(principal, request, context) -> response`` so that, in this order:

1. the request arrives as the exact bytes the client sent (no deserializer), so the node call
   signature is checked over those bytes (:mod:`protos.callsig`) — never over a re-encoding;
2. :class:`~hub.auth.Authenticator` identifies the caller and checks :data:`hub.auth.ACCESS`;
3. the bytes are parsed into the request message; garbage is ``INVALID_ARGUMENT``;
4. the endpoint runs; a :class:`~trust.errors.WardenError` becomes a status code through the
   one table in :mod:`protos.errors`; anything else is logged with its traceback and becomes
   a bare ``INTERNAL`` (no internals leak to the caller);
5. one JSON access-log line records method, caller, status and duration.

Servicers therefore never repeat auth or error handling, and there is no way to register a
method that skips them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError, Message

from hub.auth import Authenticator, Principal
from protos.errors import MD_ERROR, MD_EXPECTED_SEQ, status_of
from trust.errors import FormatError, SequenceGapError, WardenError

__all__ = ["Endpoint", "service_handler"]

log = logging.getLogger("warden.hub.rpc")

Endpoint = Callable[[Principal, Any, grpc.ServicerContext], Any]
"""A plain handler: authenticated principal, parsed request, context → response (or iterator)."""


def _wire_name(exc: WardenError) -> str:
    """The nearest class of ``exc`` that clients know (one of :mod:`trust.errors`)."""
    for cls in type(exc).__mro__:
        if cls.__module__ == "trust.errors":
            return cls.__name__
    return "WardenError"


def _abort(context: grpc.ServicerContext, exc: WardenError) -> None:
    trailing = [(MD_ERROR, _wire_name(exc))]
    if isinstance(exc, SequenceGapError):
        trailing.append((MD_EXPECTED_SEQ, str(exc.expected)))
    context.set_trailing_metadata(tuple(trailing))
    context.abort(status_of(exc), exc.message)


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


def _unary(
    method: str, request_cls: type[Message], endpoint: Endpoint, auth: Authenticator
) -> Callable[[bytes, grpc.ServicerContext], Message]:
    def behavior(raw: bytes, context: grpc.ServicerContext) -> Message:
        start = time.monotonic()
        principal: Principal | None = None
        try:
            principal = auth.authenticate(method, context.invocation_metadata(), raw)
            request = _parse(request_cls, raw, method)
            response: Message = endpoint(principal, request, context)
        except WardenError as exc:
            _log(method, principal, status_of(exc).name, start, error=exc.message)
            _abort(context, exc)
            raise AssertionError("unreachable: abort raises") from exc
        except Exception:
            if context.code() is not None:  # type: ignore[attr-defined]  # endpoint aborted
                raise
            log.exception("internal error in %s", method)
            _log(method, principal, "INTERNAL", start)
            context.abort(grpc.StatusCode.INTERNAL, "internal error (see hub log)")
            raise
        _log(method, principal, "OK", start)
        return response

    return behavior


def _stream(
    method: str, request_cls: type[Message], endpoint: Endpoint, auth: Authenticator
) -> Callable[[bytes, grpc.ServicerContext], Iterator[Message]]:
    def behavior(raw: bytes, context: grpc.ServicerContext) -> Iterator[Message]:
        start = time.monotonic()
        principal: Principal | None = None
        sent = 0
        try:
            principal = auth.authenticate(method, context.invocation_metadata(), raw)
            request = _parse(request_cls, raw, method)
            _log(method, principal, "OPEN", start)
            for item in endpoint(principal, request, context):
                sent += 1
                yield item
        except WardenError as exc:
            _log(method, principal, status_of(exc).name, start, error=exc.message, sent=sent)
            _abort(context, exc)
        except GeneratorExit:
            _log(method, principal, "CLOSED", start, sent=sent)
            raise
        except Exception:
            if context.code() is not None:  # type: ignore[attr-defined]  # endpoint aborted
                raise
            log.exception("internal error in %s", method)
            _log(method, principal, "INTERNAL", start, sent=sent)
            context.abort(grpc.StatusCode.INTERNAL, "internal error (see hub log)")
        else:
            _log(method, principal, "OK", start, sent=sent)

    return behavior


def _parse(cls: type[Message], raw: bytes, method: str) -> Message:
    try:
        return cls.FromString(raw)
    except DecodeError as exc:
        raise FormatError(f"{method}: request is not a valid protobuf message ({exc})") from None


def service_handler(
    service: ServiceDescriptor,
    endpoints: Mapping[str, Endpoint],
    auth: Authenticator,
) -> grpc.GenericRpcHandler:
    """A gRPC handler for every method of ``service``; each must have an endpoint."""
    missing = {m.name for m in service.methods} - set(endpoints)
    extra = set(endpoints) - {m.name for m in service.methods}
    if missing or extra:
        raise ValueError(f"{service.full_name}: missing {sorted(missing)}, unknown {sorted(extra)}")
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for m in service.methods:
        method = f"/{service.full_name}/{m.name}"
        request_cls = message_factory.GetMessageClass(m.input_type)
        response_cls = message_factory.GetMessageClass(m.output_type)
        if m.server_streaming:
            handlers[m.name] = grpc.unary_stream_rpc_method_handler(
                _stream(method, request_cls, endpoints[m.name], auth),
                request_deserializer=None,
                response_serializer=response_cls.SerializeToString,
            )
        else:
            handlers[m.name] = grpc.unary_unary_rpc_method_handler(
                _unary(method, request_cls, endpoints[m.name], auth),
                request_deserializer=None,
                response_serializer=response_cls.SerializeToString,
            )
    return grpc.method_handlers_generic_handler(service.full_name, handlers)
