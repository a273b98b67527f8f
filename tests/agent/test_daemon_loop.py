"""The daemon's loop in-process against a real hub: apply, govern, push, prove, prune; an
unreachable hub; a second agent on the same state dir; reload rules.

The process-level test with two `warden agent run` daemons is test_agent_daemon_e2e.py.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from agent.config import AgentConfig, load_agent_config
from agent.daemon import Agent
from agent.node import enroll_node, init_node
from agent.registry import DirectoryRegistry
from hub.config import Role
from tests.agent.test_validation import linear_classifier, publish, write_validation_data
from tests.hub.harness import HubWorld, make_world, operator, running_hub
from trust import keys
from trust.errors import StorageUnavailableError
from trust.policy.bundle import sign_source
from trust.record import AuditRecord, EventType
from trust.timeutil import utcnow

REPO = Path(__file__).resolve().parents[2]
NAME = "credit-risk"


@dataclasses.dataclass
class Node:
    world: HubWorld
    dir: Path
    config: AgentConfig
    artefacts: SimpleNamespace


def _standard(world: HubWorld, version: int) -> bytes:
    src = REPO / "policies" / "standard"
    env = sign_source(src, world.officers.policy[:2], now=utcnow())
    if version == 1:
        return env.to_json()
    raise AssertionError("only v1 is needed here")


def _node(tmp: Path, world: HubWorld, port: int) -> Node:
    d = tmp / "node"
    init_node(d, node_id="emea-1", hub=f"127.0.0.1:{port}", root=tmp / "w" / "root.json",
              ca=world.init.ca_cert)
    data = write_validation_data(tmp / "validation.csv")
    train = tmp / "train.csv"
    train.write_text("income,age,repaid\n1,30,0\n90,40,1\n")
    model = {"name": NAME, "data": str(data), "label": "repaid", "sensitive": ["sex"]}
    config = load_agent_config(d / "agent.yaml", env={}, overrides={
        "models": [model], "scan_interval_s": 0.1, "push_interval_s": 0.1,
        "witness_interval_s": 0.2})
    return Node(world, d, config,
                SimpleNamespace(model=linear_classifier((0.1, 0.0), -3.95), train=train))


def _with_port(config: AgentConfig, port: int) -> AgentConfig:
    return dataclasses.replace(config, hub=f"127.0.0.1:{port}")


@pytest.fixture
def world(tmp_path: Path) -> HubWorld:
    return make_world(tmp_path / "w")


@pytest.fixture
def enrolled(tmp_path: Path, world: HubWorld) -> Iterator[tuple[Node, object]]:
    with running_hub(world) as hub:
        node = _node(tmp_path, world, hub.port)
        enroll_node(node.config, world.token_for("emea-1"))
        with operator(world, hub, Role.COMPLIANCE) as c:
            c.publish(_standard(world, 1))
        yield node, hub


def _records(config: AgentConfig, world: HubWorld, hub: object) -> list[AuditRecord]:
    key = keys.load_private(config.node_key).public
    with operator(world, hub, Role.AUDITOR) as a:  # type: ignore[arg-type]
        entries = a.get_entries(0).entries
    return [AuditRecord.from_envelope(e.envelope, key) for e in entries
            if e.node_id == "emea-1"]


def test_once_applies_governs_pushes_proves_and_prunes(enrolled: tuple[Node, object]) -> None:
    node, hub = enrolled
    publish(node.artefacts, node.config.registry, "1.0")  # type: ignore[arg-type]
    agent = Agent(node.config)
    agent.open()
    try:
        result = agent.run_once(30.0)
        assert result.ok, result.message
        assert agent.outbox.depth() == 0 and not agent.outbox.unproved(limit=1)
        assert list(agent.outbox.entries()) == []  # proved, so pruned
    finally:
        agent.close()
    assert DirectoryRegistry(node.config.registry).current(NAME, "staging") == "1.0"
    events = [r.event for r in _records(node.config, node.world, hub)]
    assert events == [EventType.POLICY_APPLIED, EventType.MODEL_VALIDATED, EventType.PROMOTE]
    assert [r.seq for r in _records(node.config, node.world, hub)] == [1, 2, 3]
    # The heartbeat told the hub which agent and policy version run here.
    (beat,) = hub.state.store.heartbeats()  # type: ignore[attr-defined]
    assert (beat.node_id, beat.policy_name, beat.policy_version) == ("emea-1", "standard", 1)
    assert beat.agent_version


def test_an_unreachable_hub_delays_the_push_never_the_governance(
    enrolled: tuple[Node, object], world: HubWorld
) -> None:
    node, hub = enrolled
    agent = Agent(node.config)
    agent.open()
    try:
        assert agent.run_once(30.0).ok  # v1 applied and on disk
    finally:
        agent.close()
    hub.stop(grace=0.5)  # type: ignore[attr-defined]
    publish(node.artefacts, node.config.registry, "1.1")  # type: ignore[arg-type]
    offline = Agent(node.config)
    offline.open()
    try:
        result = offline.run_once(1.0)
        assert not result.ok and result.pending == 2  # model_validated, promote
        assert "not acknowledged" in result.message
    finally:
        offline.close()
    # Governed offline with the last good bundle: promoted, recorded, kept.
    assert DirectoryRegistry(node.config.registry).current(NAME, "staging") == "1.1"
    with running_hub(world) as again:
        back = Agent(_with_port(node.config, again.port))
        back.open()
        try:
            assert back.run_once(30.0).ok
        finally:
            back.close()
        recs = _records(node.config, world, again)
    # policy_applied (online); model_validated and promote (offline)
    assert [(r.seq, r.event) for r in recs] == [
        (1, EventType.POLICY_APPLIED), (2, EventType.MODEL_VALIDATED), (3, EventType.PROMOTE)]
    assert recs[-1].subject.version == "1.1" and recs[-2].subject.version == "1.1"


def test_a_second_agent_on_the_same_state_dir_is_refused(
    enrolled: tuple[Node, object],
) -> None:
    node, _ = enrolled
    first = Agent(node.config)
    first.open()
    try:
        with pytest.raises(StorageUnavailableError, match="lock|another"):
            Agent(node.config).open()
    finally:
        first.close()
    second = Agent(node.config)  # the lock is released on close
    second.open()
    second.close()


def test_reload_takes_new_models_but_refuses_identity_changes(
    enrolled: tuple[Node, object], caplog: pytest.LogCaptureFixture
) -> None:
    node, _ = enrolled
    configs = [dataclasses.replace(node.config, node_id="other-node"),
               dataclasses.replace(node.config, models=(), scan_interval_s=9.0)]
    agent = Agent(node.config, reload=configs.pop)
    agent.open()
    try:
        with caplog.at_level(logging.INFO, logger="warden.agent"):
            agent._apply_reload()  # models and intervals: taken
            assert agent.config.models == () and agent.config.scan_interval_s == 9.0
            agent._apply_reload()  # a new identity needs a restart: refused
            assert agent.config.node_id == "emea-1"
        assert "need a restart" in caplog.text
    finally:
        agent.close()
