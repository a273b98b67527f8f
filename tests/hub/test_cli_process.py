"""`warden hub` as real processes: init, serve (TLS), token create, publish, checkpoint, proofs,
graceful SIGTERM, and kill -9 during ingest losing no acknowledged record."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hub.config import load_config
from hub.state import create_enrollment_token
from protos.client import HubClient, NodeIdentity
from tests.sim import SimNode
from trust import keys
from trust.errors import TransportError, WardenError

from .harness import Officers, bundle


def _run(warden: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([warden, *args], capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError(f"warden {' '.join(args)} failed ({r.returncode}): {r.stderr}")
    return r


@contextmanager
def serving(
    warden: str, config: Path, tmp: Path, *extra: str
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """Run `warden hub serve` on a free port; yield the process and the port; kill at exit."""
    port_file = tmp / f"port-{time.monotonic_ns()}"
    log = open(tmp / "hub.log", "a")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([warden, "hub", "serve", "--config", str(config), "--listen",
                             "127.0.0.1:0", "--port-file", str(port_file), *extra],
                            stdout=log, stderr=log, text=True)
    try:
        deadline = time.monotonic() + 20
        while not port_file.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"hub did not start: {(tmp / 'hub.log').read_text()}")
            time.sleep(0.05)
        yield proc, int(port_file.read_text())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def hubdir(tmp_path: Path, warden_bin: str) -> tuple[Path, Officers]:
    officers = Officers()
    keys.save_private(officers.hub, tmp_path / "hub-signer.key")
    (tmp_path / "root.json").write_bytes(officers.root_envelope())
    out = _run(warden_bin, "hub", "init", str(tmp_path / "hub"), "--origin", "test.warden/hub",
               "--hub-key", str(tmp_path / "hub-signer.key"), "--root", str(tmp_path / "root.json"))
    assert "compliance" in out.stdout and "hub key id" in out.stdout
    return tmp_path / "hub", officers


def _token(hub: Path, node_id: str, database: str | None = None) -> str:
    """An enrollment token made in-process (the CLI path is covered by the end-to-end test)."""
    config = load_config(hub / "hub.yaml", env={}, overrides={"database": database})
    return create_enrollment_token(config, node_id, "1h")[0]


def _enroll(warden: str, hub: Path, port: int, node: SimNode, *, cli: bool = False) -> HubClient:
    if cli:
        token = _run(warden, "hub", "token", "create", "--config", str(hub / "hub.yaml"),
                     "--node", node.node_id, "--ttl", "1h").stdout.strip()
    else:
        token = _token(hub, node.node_id)
    ca = (hub / "tls" / "ca.crt").read_bytes()
    with HubClient(f"127.0.0.1:{port}", ca_cert=ca) as anon:
        anon.enroll(node.node_id, node.key, token)
    return HubClient(f"127.0.0.1:{port}", ca_cert=ca, node=NodeIdentity(node.node_id, node.key))


def test_cli_end_to_end(hubdir: tuple[Path, Officers], tmp_path: Path, warden_bin: str) -> None:
    hub, officers = hubdir
    with serving(warden_bin, hub / "hub.yaml", tmp_path) as (proc, port):
        conn = ["--hub", f"127.0.0.1:{port}", "--hub-dir", str(hub)]
        node = SimNode("emea-1")
        with _enroll(warden_bin, hub, port, node, cli=True) as c:
            c.append(node.records(6))
        (tmp_path / "v2.bundle").write_bytes(bundle(2, officers.policy[:2]))
        (tmp_path / "v1.bundle").write_bytes(bundle(1, officers.policy[:2]))
        out = _run(warden_bin, "hub", "publish", str(tmp_path / "v2.bundle"), *conn)
        assert "published standard v2" in out.stdout
        bad = _run(warden_bin, "hub", "publish", str(tmp_path / "v1.bundle"), *conn, check=False)
        assert bad.returncode == 1 and bad.stderr.startswith("error:") and "older" in bad.stderr
        assert "Traceback" not in bad.stderr
        cp = _run(warden_bin, "hub", "checkpoint", *conn)
        assert cp.stdout.startswith("test.warden/hub\n") and "verified" in cp.stderr
        sized = _run(warden_bin, "hub", "checkpoint", "--size", "1", *conn)
        assert sized.stdout.startswith("test.warden/hub\n1\n")
        wrong = _run(warden_bin, "hub", "checkpoint", "--origin", "other.log/x", *conn,
                     check=False)
        assert wrong.returncode == 1 and wrong.stderr.startswith("error:")
        inc = _run(warden_bin, "hub", "proof", "inclusion", "3", *conn)
        assert "verified" in inc.stdout
        cons = _run(warden_bin, "hub", "proof", "consistency", "1", *conn)
        assert "verified" in cons.stdout
        ent = _run(warden_bin, "hub", "entries", *conn)
        assert len(ent.stdout.splitlines()) == 8
        # Graceful drain on SIGTERM.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    lines = [json.loads(line) for line in (tmp_path / "hub.log").read_text().splitlines()
             if line.startswith("{")]
    assert any(rec.get("method") == "/warden.v1.LedgerService/Append" for rec in lines)
    assert any(rec["msg"] == "hub stopped" for rec in lines)


def test_serve_refuses_insecure_off_loopback(hubdir: tuple[Path, Officers],
                                             warden_bin: str) -> None:
    hub, _ = hubdir
    r = _run(warden_bin, "hub", "serve", "--config", str(hub / "hub.yaml"), "--insecure",
             "--listen", "0.0.0.0:0", check=False)
    assert r.returncode == 2 and "loopback" in r.stderr
    env = {**os.environ, "WARDEN_HUB_BOGUS": "1"}
    r = subprocess.run([warden_bin, "hub", "serve", "--config", str(hub / "hub.yaml")],
                       capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 2 and "WARDEN_HUB_BOGUS" in r.stderr


def test_kill_9_during_ingest_loses_no_acknowledged_record(
    hubdir: tuple[Path, Officers], tmp_path: Path, warden_bin: str
) -> None:
    hub, _ = hubdir
    ca = (hub / "tls" / "ca.crt").read_bytes()
    nodes = [SimNode(f"node-{i}") for i in range(3)]
    acked: dict[str, list[tuple[int, bytes]]] = {n.node_id: [] for n in nodes}
    sent: dict[str, list[bytes]] = {n.node_id: [] for n in nodes}
    with serving(warden_bin, hub / "hub.yaml", tmp_path) as (proc, port):
        clients = [_enroll(warden_bin, hub, port, n) for n in nodes]
        stop = threading.Event()

        def pump(node: SimNode, client: HubClient) -> None:
            while not stop.is_set():
                batch = node.records(20)
                sent[node.node_id].extend(batch)
                try:
                    r = client.append(batch, timeout=5)
                except (TransportError, WardenError):
                    return
                acked[node.node_id].extend((a.index, e) for a, e in zip(r.acks, batch,
                                                                        strict=True))

        threads = [threading.Thread(target=pump, args=(n, c)) for n, c in zip(nodes, clients,
                                                                             strict=True)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while sum(map(len, acked.values())) < 300 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.kill()  # SIGKILL mid-ingest
        proc.wait()
        stop.set()
        for t in threads:
            t.join(timeout=10)
        for c in clients:
            c.close()
    total_acked = sum(map(len, acked.values()))
    assert total_acked >= 300
    with serving(warden_bin, hub / "hub.yaml", tmp_path) as (_, port):
        token = (hub / "tokens" / "auditor.token").read_text().strip()
        with HubClient(f"127.0.0.1:{port}", ca_cert=ca, token=token) as auditor:
            stored: list[bytes] = []
            while True:
                page = auditor.get_entries(len(stored), 1000)
                stored.extend(e.envelope for e in page.entries)
                if len(stored) >= page.ledger_size:
                    break
    for node_id, items in acked.items():
        for index, envelope in items:
            assert stored[index] == envelope, f"acked record of {node_id} at {index} lost"
        # Whatever was stored beyond the acks is a prefix of what was sent (all-or-nothing).
        mine = [e for e in stored if e in set(sent[node_id])]
        assert mine == sent[node_id][: len(mine)]
        assert len(mine) >= len(items)
