"""Shared helpers for hub tests: officers, a trust root, bundles, a running hub, clients.

Everything is real: keys, DSSE envelopes, a hub directory from ``init_hub``, a SQLite file,
and a gRPC server with TLS on a port the OS picks. Nodes and their records (honest or not)
come from :mod:`tests.sim`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from hub.config import HubConfig, Role, load_config
from hub.server import RunningHub, start
from hub.state import create_enrollment_token
from hub.tls import InitResult, init_hub
from protos.client import EnrollResult, HubClient, NodeIdentity
from tests.sim import SimNode
from trust import dsse, keys
from trust.canonical import canonical_json, sha256_hex
from trust.keys import SigningKey
from trust.policy.bundle import BUNDLE_PAYLOAD_TYPE, BUNDLE_SCHEMA
from trust.root import Role as RootRole
from trust.root import RootMetadata
from trust.timeutil import format_time, utcnow

REGO = "package warden\n\nimport rego.v1\n\ndecision := {\"allow\": true, \"violations\": []}\n"


@dataclass
class Officers:
    """Every key a test world needs."""

    root: SigningKey = field(default_factory=keys.generate)
    policy: tuple[SigningKey, ...] = field(
        default_factory=lambda: (keys.generate(), keys.generate(), keys.generate()))
    hub: SigningKey = field(default_factory=keys.generate)
    approver: SigningKey = field(default_factory=keys.generate)

    def root_envelope(self, now: datetime | None = None) -> bytes:
        """Trust root v1: policy 2-of-3, hub 1, approver:risk_officer 1."""
        now = now or utcnow()
        all_keys = {k.key_id: k.public for k in (self.root, *self.policy, self.hub, self.approver)}
        meta = RootMetadata(
            version=1,
            expires=now + timedelta(days=365),
            keys=all_keys,
            roles={
                "root": RootRole((self.root.key_id,), 1),
                "policy": RootRole(tuple(k.key_id for k in self.policy), 2),
                "hub": RootRole((self.hub.key_id,), 1),
                "approver:risk_officer": RootRole((self.approver.key_id,), 1),
            },
        )
        return meta.envelope([self.root]).to_json()


def bundle(
    version: int,
    signers: tuple[SigningKey, ...],
    *,
    name: str = "standard",
    expires: datetime | None = None,
    data: dict[str, object] | None = None,
) -> bytes:
    """A signed policy bundle envelope (JSON bytes)."""
    payload = canonical_json({
        "schema": BUNDLE_SCHEMA,
        "manifest": {"name": name, "version": version,
                     "expires": format_time(expires or utcnow() + timedelta(days=30)),
                     "description": "test", "entrypoint": "data.warden.decision",
                     "decision": "document"},
        "data": {"min_accuracy": 0.8} if data is None else data,
        "files": {"decision.rego": {"sha256": sha256_hex(REGO.encode()), "text": REGO}},
    })
    return dsse.sign(BUNDLE_PAYLOAD_TYPE, payload, signers).to_json()


@dataclass
class HubWorld:
    """A hub directory, its config, and the officers behind its trust root."""

    dir: Path
    init: InitResult
    officers: Officers
    config: HubConfig

    @property
    def ca(self) -> bytes:
        """The CA certificate agents pin."""
        return self.init.ca_cert.read_bytes()

    def token_for(self, node_id: str, ttl: str = "1h") -> str:
        """A fresh enrollment token (as ``warden hub token create`` makes it)."""
        return create_enrollment_token(self.config, node_id, ttl)[0]


def make_world(tmp: Path, *, database: str | None = None, **overrides: object) -> HubWorld:
    """A hub directory with TLS, officers, a root and a config listening on a free port."""
    officers = Officers()
    tmp.mkdir(parents=True, exist_ok=True)
    keys.save_private(officers.hub, tmp / "hub-officer.key")
    (tmp / "root.json").write_bytes(officers.root_envelope())
    init = init_hub(tmp / "hub", origin="test.warden/hub", listen="127.0.0.1:0",
                    hub_key=tmp / "hub-officer.key", trust_root=tmp / "root.json",
                    database=database)
    flags = {"listen": "127.0.0.1:0", **{k: v for k, v in overrides.items()}}
    config = load_config(init.config, env={}, overrides=flags)
    return HubWorld(tmp / "hub", init, officers, config)


@contextmanager
def running_hub(world: HubWorld) -> Iterator[RunningHub]:
    """Start the hub in-process; drain and stop it afterwards."""
    hub = start(world.config)
    try:
        yield hub
    finally:
        hub.stop(grace=1.0)


def operator(world: HubWorld, hub: RunningHub, role: Role | None) -> HubClient:
    """A client authenticated as an operator of ``role`` (or anonymous when None)."""
    token = None if role is None else world.init.tokens[role]
    return HubClient(f"127.0.0.1:{hub.port}", ca_cert=world.ca, token=token, timeout=10)


def node_client(world: HubWorld, hub: RunningHub, node: SimNode) -> HubClient:
    """A client authenticated as ``node`` (per-call signatures)."""
    return HubClient(f"127.0.0.1:{hub.port}", ca_cert=world.ca,
                     node=NodeIdentity(node.node_id, node.key), timeout=10)


def enroll(world: HubWorld, hub: RunningHub, node: SimNode) -> EnrollResult:
    """Enroll ``node`` with a fresh token; the hub's answer holds the enrollment event."""
    with operator(world, hub, None) as c:
        return c.enroll(node.node_id, node.key, world.token_for(node.node_id))


def wait_for(predicate: object, timeout: float = 5.0) -> None:
    """Poll ``predicate()`` until true or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


WARDEN = str(Path(sys.executable).with_name("warden"))
"""The installed console script (a real process: ``hub serve`` sets up logging)."""


def warden_process(*argv: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = (),
                   timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``[*prefix] warden ARGV`` in its own process; capture its output as text."""
    return subprocess.run([*prefix, WARDEN, *argv], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def assert_refused_cleanly(proc: subprocess.CompletedProcess[str], pattern: str) -> None:
    """Exit 2, stderr starts with ``error: `` and matches ``pattern``, and no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert re.search(pattern, proc.stderr), proc.stderr
    assert proc.stderr.startswith("error: "), proc.stderr


@pytest.fixture
def used_world(tmp_path: Path) -> HubWorld:
    """A stopped hub whose ledger already holds a checkpoint under its origin (one node)."""
    world = make_world(tmp_path, verify_workers=0)
    hub = start(world.config)
    try:
        enroll(world, hub, SimNode("emea-1"))
    finally:
        hub.stop(grace=1.0)
    return world
