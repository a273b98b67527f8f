"""A small, synchronous client of the hub: what the agent, the CLI and the tests all use.

It lives in ``protos`` (which both ``agent`` and ``hub`` may import) and keeps the generated
types at the edge: every method takes and returns plain Python values or the frozen wire
types of :mod:`protos.types` (re-exported here; converted by :mod:`protos.serde`, the same
conversions the hub's servicers use), with signed content as the verbatim envelope / note
bytes. Verifying those bytes (signatures, checkpoints, proofs) is the caller's job, with
:mod:`trust` — the client is a transport and trusts nothing it receives.

Authentication (see :mod:`hub.auth` for the server side):

* operators pass ``token=`` (sent as ``authorization: Bearer``);
* agents pass ``node=NodeIdentity(node_id, signing_key)``: every call is signed over its exact
  request bytes (:mod:`protos.callsig`), which is why requests are serialized here once and
  sent as bytes.

TLS pins the hub's CA certificate (``ca_cert=``). Plaintext needs ``insecure=True`` and a
loopback target. Hub errors are re-raised as the same :class:`~trust.errors.WardenError`
subclass the hub raised (:mod:`protos.errors`); transport failures as
:class:`~trust.errors.TransportError`.

Example::

    with HubClient("127.0.0.1:7443", ca_cert=Path("ca.crt").read_bytes(),
                   node=NodeIdentity("emea-1", key)) as hub:
        result = hub.append([envelope_bytes])
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from protos import serde
from protos.callsig import sign_call, sign_enrollment
from protos.errors import error_from_status
from protos.types import (
    Ack,
    AppendResult,
    ApprovalReceipt,
    ApprovalRecord,
    ConsistencyProof,
    EnrollResult,
    EntriesPage,
    Entry,
    HeartbeatResult,
    InclusionProof,
    PolicyRecord,
    PublishResult,
    RootPublishResult,
)
from protos.warden.v1 import (
    approval_pb2,
    enrollment_pb2,
    ledger_pb2,
    policy_pb2,
    root_pb2,
)
from trust.errors import TransportError, UsageError
from trust.keys import SigningKey

__all__ = [
    "Ack",
    "AppendResult",
    "ApprovalRecord",
    "ApprovalReceipt",
    "ConsistencyProof",
    "EnrollResult",
    "EntriesPage",
    "Entry",
    "HeartbeatResult",
    "HubClient",
    "InclusionProof",
    "NodeIdentity",
    "PolicyRecord",
    "PublishResult",
    "PolicyWatch",
    "RootPublishResult",
    "is_loopback",
    "DEFAULT_MAX_MESSAGE_BYTES",
]

DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
_M = TypeVar("_M", bound=Message)


def is_loopback(target: str) -> bool:
    """True when ``host:port`` names a loopback interface."""
    host = target.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class NodeIdentity:
    """A node id and the key it is enrolled with (signs every call)."""

    node_id: str
    key: SigningKey


class PolicyWatch:
    """An open Watch stream: iterate for bundles as they are published; ``cancel()`` ends it."""

    def __init__(self, call: Any, client: HubClient) -> None:
        self._call = call
        self._client = client

    def __iter__(self) -> Iterator[PolicyRecord]:
        try:
            for update in self._call:
                yield serde.policy_record_from_proto(update)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.CANCELLED:
                return
            raise self._client._error(exc) from None

    def cancel(self) -> None:
        """Close the stream (the iterator then stops)."""
        self._call.cancel()


class HubClient:
    """A connection to one hub. Thread-safe; close it (or use ``with``) when done."""

    def __init__(
        self,
        target: str,
        *,
        ca_cert: bytes | None = None,
        insecure: bool = False,
        token: str | None = None,
        node: NodeIdentity | None = None,
        timeout: float = 10.0,
        server_name: str | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        if token is not None and node is not None:
            raise UsageError("a hub client authenticates as an operator or a node, not both")
        options: list[tuple[str, Any]] = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ]
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        if insecure:
            if not is_loopback(target):
                raise UsageError(f"refusing plaintext gRPC to non-loopback target {target!r}",
                                 hint="pass the hub's CA certificate instead of --insecure")
            self._channel = grpc.insecure_channel(target, options=options)
        else:
            if ca_cert is None:
                raise UsageError("a TLS connection to the hub needs its CA certificate",
                                 hint="pass --ca DIR/tls/ca.crt (made by 'warden hub init')")
            creds = grpc.ssl_channel_credentials(root_certificates=ca_cert)
            self._channel = grpc.secure_channel(target, creds, options=options)
        self.target = target
        self._token = token
        self._node = node
        self._timeout = timeout
        self._lock = threading.Lock()
        self._methods: dict[str, Any] = {}

    # -- plumbing ---------------------------------------------------------------------------

    def __enter__(self) -> HubClient:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Block until the channel connects; :class:`TransportError` after ``timeout``."""
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise TransportError(f"hub at {self.target} not reachable within {timeout} s") from None

    def _metadata(self, method: str, body: bytes) -> tuple[tuple[str, str], ...]:
        if self._node is not None:
            return sign_call(self._node.key, method, self._node.node_id, body)
        if self._token is not None:
            return (("authorization", f"Bearer {self._token}"),)
        return ()

    def _error(self, exc: grpc.RpcError) -> Exception:
        call: Any = exc
        code = call.code() if hasattr(call, "code") else grpc.StatusCode.UNKNOWN
        details = call.details() if hasattr(call, "details") else str(exc)
        trailing: dict[str, str] = {}
        md = call.trailing_metadata() if hasattr(call, "trailing_metadata") else None
        for k, v in md or ():
            trailing[k] = v if isinstance(v, str) else v.decode("latin-1")
        return error_from_status(code, details or "", trailing)

    def _callable(self, method: str, response_cls: type[Message], stream: bool) -> Any:
        with self._lock:
            fn = self._methods.get(method)
            if fn is None:
                factory = self._channel.unary_stream if stream else self._channel.unary_unary
                # No request serializer: requests are serialized once, signed, and sent as is.
                fn = factory(method, request_serializer=None,
                             response_deserializer=response_cls.FromString)
                self._methods[method] = fn
            return fn

    def _call(self, method: str, request: Message, response_cls: type[_M],
              timeout: float | None = None) -> _M:
        body = request.SerializeToString()
        fn = self._callable(method, response_cls, stream=False)
        try:
            response: _M = fn(body, metadata=self._metadata(method, body),
                              timeout=timeout or self._timeout)
        except grpc.RpcError as exc:
            raise self._error(exc) from None
        return response

    # -- ledger -----------------------------------------------------------------------------

    def append(self, envelopes: Sequence[bytes], *, timeout: float | None = None) -> AppendResult:
        """Append the calling node's records (envelope JSON bytes, in seq order), all or none."""
        r = self._call("/warden.v1.LedgerService/Append",
                       ledger_pb2.AppendRequest(envelopes=list(envelopes)),
                       ledger_pb2.AppendResponse, timeout)
        return serde.append_result_from_proto(r)

    def get_checkpoint(self, tree_size: int | None = None) -> bytes:
        """The latest signed checkpoint note, or the stored one of ``tree_size``."""
        req = ledger_pb2.GetCheckpointRequest()
        if tree_size is not None:
            req.tree_size = tree_size
        r = self._call("/warden.v1.LedgerService/GetCheckpoint", req,
                       ledger_pb2.GetCheckpointResponse)
        return r.checkpoint.note

    def get_entries(self, start: int = 0, limit: int | None = None) -> EntriesPage:
        """Entries from ``start`` (at most ``limit``, capped by the hub)."""
        req = ledger_pb2.GetEntriesRequest(start=start)
        if limit is not None:
            req.limit = limit
        r = self._call("/warden.v1.LedgerService/GetEntries", req, ledger_pb2.GetEntriesResponse)
        return serde.entries_page_from_proto(r)

    def inclusion_proof(self, index: int, tree_size: int | None = None) -> InclusionProof:
        """Inclusion proof of entry ``index`` (in the latest checkpoint's tree if no size)."""
        req = ledger_pb2.GetInclusionProofRequest(index=index)
        if tree_size is not None:
            req.tree_size = tree_size
        r = self._call("/warden.v1.LedgerService/GetInclusionProof", req,
                       ledger_pb2.GetInclusionProofResponse)
        return serde.inclusion_proof_from_proto(r)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """Consistency proof from ``old_size`` to ``new_size`` (latest checkpoint if none)."""
        req = ledger_pb2.GetConsistencyProofRequest(old_size=old_size)
        if new_size is not None:
            req.new_size = new_size
        r = self._call("/warden.v1.LedgerService/GetConsistencyProof", req,
                       ledger_pb2.GetConsistencyProofResponse)
        return serde.consistency_proof_from_proto(r)

    # -- enrollment -------------------------------------------------------------------------

    def enroll(self, node_id: str, key: SigningKey, token: str,
               agent_version: str = "") -> EnrollResult:
        """Enroll ``node_id`` with ``key``'s public key, consuming ``token``.

        The request is signed with ``key`` (:func:`protos.callsig.sign_enrollment`): the hub
        enrolls only a key the enroller proves it holds.
        """
        signed_at, signature = sign_enrollment(key, node_id, token)
        req = enrollment_pb2.EnrollRequest(node_id=node_id, public_key=key.public.raw,
                                           token=token, agent_version=agent_version,
                                           time=signed_at, signature=signature)
        r = self._call("/warden.v1.EnrollmentService/Enroll", req, enrollment_pb2.EnrollResponse)
        return serde.enroll_result_from_proto(r)

    def rotate_key(self, new_key: SigningKey) -> EnrollResult:
        """Hand the calling node's identity to ``new_key`` (signed by the current and new key).

        On success, later calls are signed with ``new_key``.
        """
        from trust.record import rotation_message

        if self._node is None:
            raise UsageError("rotate_key needs a node identity")
        message = rotation_message(self._node.node_id, self._node.key.public, new_key.public)
        req = enrollment_pb2.RotateKeyRequest(
            new_public_key=new_key.public.raw,
            old_key_signature=self._node.key.sign(message),
            new_key_signature=new_key.sign(message),
        )
        r = self._call("/warden.v1.EnrollmentService/RotateKey", req,
                       enrollment_pb2.RotateKeyResponse)
        self._node = NodeIdentity(self._node.node_id, new_key)
        return serde.enroll_result_from_proto(r)

    def heartbeat(
        self,
        agent_version: str,
        *,
        policy_name: str | None = None,
        policy_version: int | None = None,
        last_acked_seq: int | None = None,
    ) -> HeartbeatResult:
        """Report liveness; returns the hub time and the latest version of the node's policy."""
        req = enrollment_pb2.HeartbeatRequest(agent_version=agent_version)
        if policy_name is not None:
            req.policy_name = policy_name
        if policy_version is not None:
            req.policy_version = policy_version
        if last_acked_seq is not None:
            req.last_acked_seq = last_acked_seq
        r = self._call("/warden.v1.EnrollmentService/Heartbeat", req,
                       enrollment_pb2.HeartbeatResponse)
        return serde.heartbeat_result_from_proto(r)

    # -- policy -----------------------------------------------------------------------------

    def publish(self, envelope: bytes) -> PublishResult:
        """Publish a signed policy bundle (compliance role)."""
        r = self._call("/warden.v1.PolicyService/Publish",
                       policy_pb2.PublishRequest(envelope=envelope), policy_pb2.PublishResponse)
        return serde.publish_result_from_proto(r)

    def get_policy(self, name: str = "", version: int | None = None,
                   if_none_match: str = "") -> PolicyRecord | None:
        """The latest (or a given) version of a bundle; ``None`` if ``if_none_match`` is current."""
        req = policy_pb2.GetPolicyRequest(name=name, if_none_match=if_none_match)
        if version is not None:
            req.version = version
        r = self._call("/warden.v1.PolicyService/Get", req, policy_pb2.GetPolicyResponse)
        if r.not_modified:
            return None
        return serde.policy_record_from_proto(r.bundle)

    def watch_policies(self, name: str = "", after_version: int | None = None) -> PolicyWatch:
        """Open a Watch stream (no deadline): the current bundle if newer, then each new one."""
        req = policy_pb2.WatchPolicyRequest(name=name)
        if after_version is not None:
            req.after_version = after_version
        method = "/warden.v1.PolicyService/Watch"
        body = req.SerializeToString()
        fn = self._callable(method, policy_pb2.PolicyUpdate, stream=True)
        return PolicyWatch(fn(body, metadata=self._metadata(method, body)), self)

    # -- trust root -------------------------------------------------------------------------

    def publish_root(self, envelope: bytes) -> RootPublishResult:
        """Publish root N+1 (its root.json bytes, verbatim; compliance role).

        The hub verifies it from its current root and refuses anything but exactly N+1; the
        same bytes again answer with the same ledger index.
        """
        r = self._call("/warden.v1.RootService/Publish",
                       root_pb2.PublishRootRequest(envelope=envelope),
                       root_pb2.PublishRootResponse)
        return serde.root_publish_result_from_proto(r)

    def root_chain(self, after_version: int) -> tuple[bytes, ...]:
        """Every root the hub published above ``after_version``, oldest first, as envelope
        bytes. Unverified: walk them with :meth:`trust.root.TrustRoot.rotate_chain` from the
        root you pinned, and never trust one the chain does not prove."""
        r = self._call("/warden.v1.RootService/GetChain",
                       root_pb2.GetRootChainRequest(after_version=after_version),
                       root_pb2.GetRootChainResponse)
        return serde.root_chain_from_proto(r)

    # -- approvals --------------------------------------------------------------------------

    def submit_approval(self, envelope: bytes) -> ApprovalReceipt:
        """Record an approval envelope signed by an ``approver:<role>`` key."""
        r = self._call("/warden.v1.ApprovalService/Submit",
                       approval_pb2.SubmitApprovalRequest(envelope=envelope),
                       approval_pb2.SubmitApprovalResponse)
        return serde.approval_receipt_from_proto(r)

    def list_approvals(self, role: str = "", subject: str = "",
                       limit: int | None = None) -> tuple[ApprovalRecord, ...]:
        """Recorded approvals, optionally filtered by role and subject."""
        req = approval_pb2.ListApprovalsRequest(role=role, subject=subject)
        if limit is not None:
            req.limit = limit
        r = self._call("/warden.v1.ApprovalService/List", req, approval_pb2.ListApprovalsResponse)
        return tuple(serde.approval_record_from_proto(a) for a in r.approvals)
