"""LedgerService over real gRPC + TLS: append rules, bad input, checkpoints and proofs."""

from __future__ import annotations

import grpc
import pytest

from hub.config import Role
from hub.server import RunningHub
from protos.warden.v1 import ledger_pb2
from tests.sim import SimNode
from trust import merkle
from trust.errors import (
    AccessDeniedError,
    ChainBrokenError,
    EquivocationError,
    FormatError,
    NotFoundError,
    SequenceGapError,
    SignatureError,
    TransportError,
    UsageError,
)
from trust.hub_checkpoint import verify_hub_checkpoint
from trust.root import TrustRoot

from .harness import HubWorld, enroll, node_client, operator


def _root(world: HubWorld) -> TrustRoot:
    return TrustRoot.load(world.config.trust_root)


def test_append_acks_with_a_covering_signed_checkpoint(world: HubWorld, hub: RunningHub) -> None:
    node = SimNode("emea-1")
    enroll(world, hub, node)
    with node_client(world, hub, node) as c:
        r = c.append(node.records(5))
    assert [a.index for a in r.acks] == [1, 2, 3, 4, 5]  # entry 0 is the enrollment
    assert not any(a.duplicate for a in r.acks)
    cp = verify_hub_checkpoint(_root(world), r.checkpoint, origin="test.warden/hub")
    assert cp.size >= 6
    with operator(world, hub, Role.AUDITOR) as a:
        page = a.get_entries(0)
        assert [e.index for e in page.entries] == list(range(6))
        assert page.entries[0].kind == "enrollment" and page.entries[1].kind == "audit"
        assert page.entries[3].node_id == "emea-1" and page.entries[3].seq == 3
        for e in page.entries:  # envelopes verbatim; leaf hashes recomputable
            assert merkle.leaf_hash(e.envelope) == e.leaf_hash
        leaves = [e.leaf_hash for e in page.entries]
        assert merkle.root(leaves[: cp.size]) == cp.root_hash
        proof = a.inclusion_proof(4, cp.size)
        merkle.verify_inclusion(leaves[4], 4, cp.size, list(proof.hashes), cp.root_hash)
        old = verify_hub_checkpoint(_root(world), a.get_checkpoint(1), origin=world.config.origin)
        cons = a.consistency_proof(old.size, cp.size)
        merkle.verify_consistency(old.size, cp.size, list(cons.hashes), old.root_hash,
                                  cp.root_hash)


def test_resend_is_acknowledged_without_a_second_append(world: HubWorld, hub: RunningHub) -> None:
    node = SimNode("emea-1")
    enroll(world, hub, node)
    batch = node.records(3)
    with node_client(world, hub, node) as c:
        first = c.append(batch)
        again = c.append(batch)
        more = c.append(batch[2:] + node.records(1))
    assert [a.index for a in again.acks] == [a.index for a in first.acks]
    assert all(a.duplicate for a in again.acks)
    assert [a.duplicate for a in more.acks] == [True, False]
    assert more.acks[1].index == first.acks[-1].index + 1


def test_bad_records(world: HubWorld, hub: RunningHub) -> None:
    a, b = SimNode("emea-1"), SimNode("apac-1")
    enroll(world, hub, a)
    enroll(world, hub, b)
    with node_client(world, hub, a) as c:
        c.append(a.records(2))
        # signed by another node's key
        with pytest.raises(SignatureError):
            c.append([a.record(seq=3, key=b.key)])
        # payload naming another node
        with pytest.raises(AccessDeniedError, match="names node"):
            c.append([a.record(seq=3, node_id="apac-1")])
        # seq gap: the error carries the expected seq across the wire
        with pytest.raises(SequenceGapError) as gap:
            c.append([a.record(seq=5)])
        assert gap.value.expected == 3
        # prev not the previous envelope's digest
        with pytest.raises(ChainBrokenError):
            c.append([a.record(seq=3, prev="ab" * 32)])
        # equivocation: same seq, different bytes
        with pytest.raises(EquivocationError):
            c.append([a.record(seq=2, prev=_prev_of(world, hub, 1))])
        # malformed envelope
        with pytest.raises(FormatError):
            c.append([b"{not json"])
        # empty and oversize batches
        with pytest.raises(UsageError):
            c.append([])
        # all-or-nothing: a good record before a bad one is not appended
        good = a.record()
        with pytest.raises(SequenceGapError):
            c.append([good, a.record(seq=99)])
        assert c.append([good]).acks[0].duplicate is False


def _prev_of(world: HubWorld, hub: RunningHub, seq: int) -> str:
    from trust.canonical import sha256_hex

    with operator(world, hub, Role.AUDITOR) as a:
        for e in a.get_entries(0).entries:
            if e.node_id == "emea-1" and e.seq == seq:
                return sha256_hex(e.envelope)
    raise AssertionError("entry not found")


def test_oversize_batch_by_count_and_by_bytes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from .harness import make_world, running_hub

    world = make_world(tmp_path, max_batch=4, max_message_bytes=64 * 1024)
    with running_hub(world) as hub:
        node = SimNode("emea-1")
        enroll(world, hub, node)
        with node_client(world, hub, node) as c:
            with pytest.raises(UsageError, match="max_batch"):
                c.append(node.records(5))
            with pytest.raises((UsageError, TransportError)):
                c.append([b"x" * 70_000])
            node.seq, node.prev = 0, "0" * 64
            assert len(c.append(node.records(4)).acks) == 4


def test_unenrolled_node_is_refused(world: HubWorld, hub: RunningHub) -> None:
    stranger = SimNode("ghost-1")
    with node_client(world, hub, stranger) as c, pytest.raises(AccessDeniedError,
                                                              match="not enrolled"):
        c.append(stranger.records(1))


def test_read_errors(world: HubWorld, hub: RunningHub) -> None:
    with operator(world, hub, Role.AUDITOR) as a:
        with pytest.raises(NotFoundError, match="empty"):
            a.get_checkpoint()
        node = SimNode("emea-1")
        enroll(world, hub, node)
        with pytest.raises(NotFoundError):
            a.inclusion_proof(5)
        with pytest.raises(NotFoundError):
            a.get_checkpoint(999)
        with pytest.raises(UsageError):
            a.consistency_proof(0)


def test_garbage_request_bytes_are_invalid_argument(world: HubWorld, hub: RunningHub) -> None:
    channel = grpc.secure_channel(f"127.0.0.1:{hub.port}",
                                  grpc.ssl_channel_credentials(world.ca))
    call: grpc.UnaryUnaryMultiCallable[bytes, ledger_pb2.GetCheckpointResponse] = (
        channel.unary_unary("/warden.v1.LedgerService/GetCheckpoint",
                            request_serializer=None,
                            response_deserializer=ledger_pb2.GetCheckpointResponse.FromString))
    with pytest.raises(grpc.RpcError) as info:
        call(b"\xff\xff\xff", metadata=(("authorization",
                                         f"Bearer {world.init.tokens[Role.AUDITOR]}"),))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    channel.close()


def test_checkpoint_interval_still_covers_every_ack(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from .harness import make_world, running_hub

    world = make_world(tmp_path, checkpoint_interval_ms=200)
    with running_hub(world) as hub:
        node = SimNode("emea-1")
        enroll(world, hub, node)
        root = _root(world)
        with node_client(world, hub, node) as c:
            for _ in range(3):
                r = c.append(node.records(2))
                cp = verify_hub_checkpoint(root, r.checkpoint, origin=world.config.origin)
                assert cp.size > max(a.index for a in r.acks)


def test_large_batches_are_checked_by_the_verifier_pool(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from .harness import make_world, running_hub

    world = make_world(tmp_path, verify_workers=2)
    with running_hub(world) as hub:
        assert hub.state.verifier.workers == 2
        node = SimNode("emea-1")
        enroll(world, hub, node)
        root = _root(world)
        with node_client(world, hub, node) as c:
            r = c.append(node.records(100))  # split across both workers
            assert [a.index for a in r.acks] == list(range(1, 101))
            assert verify_hub_checkpoint(root, r.checkpoint, origin=world.config.origin).size == 101
            batch = node.records(100)
            batch[57] = node.record(key=SimNode("intruder").key, seq=node.seq + 1)
            with pytest.raises(SignatureError, match="record 57 of the batch"):
                c.append(batch)
            with operator(world, hub, Role.AUDITOR) as a:
                cp = verify_hub_checkpoint(root, a.get_checkpoint(), origin=world.config.origin)
                assert cp.size == 101  # nothing
