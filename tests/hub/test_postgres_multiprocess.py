"""Two `warden hub serve` processes on one PostgreSQL database, agents appending through both:
the result is one linear chain (issue 4, "Scale beyond one machine")."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from hub.config import load_config
from protos.client import HubClient, NodeIdentity
from tests.pg import PostgresServer, fresh_database, postgres_server  # noqa: F401
from tests.sim import SimNode
from trust import merkle
from trust.checkpoint import Checkpoint
from trust.hub_checkpoint import verify_hub_checkpoint
from trust.record import GENESIS_PREV, HUB_NODE_ID, AuditRecord, HubEvent
from trust.root import TrustRoot

from .test_cli_process import _token, hubdir, serving  # noqa: F401

pytestmark = pytest.mark.postgres


def test_two_hub_processes_one_linear_chain(
    hubdir: tuple[Path, object],  # noqa: F811
    tmp_path: Path,
    warden_bin: str,
    postgres_server: PostgresServer,  # noqa: F811
) -> None:
    hub, officers = hubdir
    url = fresh_database(postgres_server)
    db = ["--database", url]
    ca = (hub / "tls" / "ca.crt").read_bytes()
    root = TrustRoot.load(hub / "root.json")
    origin = load_config(hub / "hub.yaml", env={}).origin
    nodes = [SimNode(f"node-{i}") for i in range(4)]
    notes: list[bytes] = []
    errors: list[BaseException] = []
    with serving(warden_bin, hub / "hub.yaml", tmp_path, *db) as (_, port_a), \
            serving(warden_bin, hub / "hub.yaml", tmp_path, *db) as (_, port_b):
        ports = (port_a, port_b)
        for i, node in enumerate(nodes):
            token = _token(hub, node.node_id, url)
            # Enroll through alternating processes too.
            with HubClient(f"127.0.0.1:{ports[i % 2]}", ca_cert=ca) as c:
                c.enroll(node.node_id, node.key, token)

        def agent(node: SimNode) -> None:
            try:
                clients = [HubClient(f"127.0.0.1:{p}", ca_cert=ca,
                                     node=NodeIdentity(node.node_id, node.key)) for p in ports]
                for i in range(12):  # alternate hub processes batch by batch
                    r = clients[i % 2].append(node.records(10))
                    notes.append(r.checkpoint)
                for c in clients:
                    c.close()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=agent, args=(n,)) for n in nodes]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        token = (hub / "tokens" / "auditor.token").read_text().strip()
        with HubClient(f"127.0.0.1:{port_b}", ca_cert=ca, token=token) as auditor:
            entries = []
            while True:
                page = auditor.get_entries(len(entries), 1000)
                entries.extend(page.entries)
                if len(entries) >= page.ledger_size:
                    break
            latest = verify_hub_checkpoint(root, auditor.get_checkpoint(), origin=origin)
            checkpoints: dict[int, Checkpoint] = {}
            for note in notes:
                cp = verify_hub_checkpoint(root, note, origin=origin)
                checkpoints[cp.size] = cp
            checkpoints[latest.size] = latest
            sizes = sorted(checkpoints)
            for old, new in zip(sizes, sizes[1:], strict=False):
                proof = auditor.consistency_proof(old, new)
                merkle.verify_consistency(old, new, list(proof.hashes),
                                          checkpoints[old].root_hash, checkpoints[new].root_hash)

    n = len(entries)
    assert n == 4 + 4 * 12 * 10  # 4 enrollments + every record, each exactly once
    assert [e.index for e in entries] == list(range(n))  # no gap, no fork
    chain = bytes(32)
    leaves = []
    for e in entries:
        assert e.leaf_hash == merkle.leaf_hash(e.envelope)
        chain = hashlib.sha256(chain + e.leaf_hash).digest()
        assert e.chain_hash == chain
        leaves.append(e.leaf_hash)
    for size, cp in checkpoints.items():  # every signed checkpoint is a prefix of this ledger
        assert merkle.root(leaves[:size]) == cp.root_hash
    streams: dict[str, list[tuple[int, str, bytes]]] = {}
    keys_by_node = {node.node_id: node.key.public for node in nodes}
    for e in entries:
        if e.node_id == HUB_NODE_ID:
            ev = HubEvent.from_envelope(e.envelope, officers.hub.public)  # type: ignore[attr-defined]
            streams.setdefault(HUB_NODE_ID, []).append((ev.seq, ev.prev, e.envelope))
        else:
            rec = AuditRecord.from_envelope(e.envelope, keys_by_node[e.node_id])
            streams.setdefault(rec.node_id, []).append((rec.seq, rec.prev, e.envelope))
    for node_id, items in streams.items():  # every stream's seq continuous, prev linked
        assert [s for s, _, _ in items] == list(range(1, len(items) + 1)), node_id
        prev = GENESIS_PREV
        for _, p, env in items:
            assert p == prev
            prev = hashlib.sha256(env).hexdigest()
