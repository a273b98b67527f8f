"""agent.yaml keys of production governance: ``models[].monitoring``, ``registry_kind`` and
the ``mlflow`` section — parsed, cross-checked, and refused with the file and key named."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_agent_config
from agent.mlflow_registry import MlflowRegistry
from agent.registry import DirectoryRegistry
from trust.errors import ConfigError

BASE = "node_id: emea-1\nhub: 127.0.0.1:7443\ninsecure: true\n"
MONITORED = """models:
  - name: credit
    data: v.csv
    label: y
    monitoring: {inputs: inference, profile: ref.profile.json, window_s: 600, min_rows: 5}
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "agent.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def _refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_agent_config(_write(tmp_path, text), env={})
    return info.value.message


def test_monitoring_section_is_parsed_with_paths_from_the_file(tmp_path: Path) -> None:
    cfg = load_agent_config(_write(tmp_path, BASE + MONITORED), env={})
    mon = cfg.models[0].monitoring
    assert mon is not None
    assert mon.inputs == tmp_path / "inference"
    assert mon.profile == tmp_path / "ref.profile.json"
    assert (mon.window_s, mon.min_rows, mon.grace_s) == (600, 5, 60.0)
    assert cfg.registry_kind == "directory" and cfg.mlflow is None


def test_monitoring_needs_the_production_stage(tmp_path: Path) -> None:
    text = BASE + MONITORED.replace("    label: y\n", "    label: y\n    stages: [staging]\n")
    message = _refused(tmp_path, text)
    assert "agent.yaml" in message and "models[0]" in message
    assert "'production'" in message


def test_a_bad_monitoring_key_names_the_file_and_key(tmp_path: Path) -> None:
    message = _refused(tmp_path, BASE + MONITORED.replace("min_rows: 5", "min_rows: 0"))
    assert "agent.yaml" in message and "min_rows" in message
    message = _refused(tmp_path, BASE + MONITORED.replace("min_rows: 5", "windows: 5"))
    assert "windows" in message


def test_registry_kind_mlflow_builds_the_mlflow_registry(tmp_path: Path) -> None:
    (tmp_path / "mlflow.db").touch()
    text = BASE + MONITORED + "registry_kind: mlflow\nmlflow: {tracking_uri: sqlite:///mlflow.db}\n"
    cfg = load_agent_config(_write(tmp_path, text), env={})
    assert cfg.mlflow is not None
    assert cfg.mlflow.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    registry = cfg.mlflow.registry(state_dir=tmp_path)
    assert isinstance(registry, MlflowRegistry)
    assert not isinstance(registry, DirectoryRegistry)


def test_registry_kind_from_the_environment(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_agent_config(_write(tmp_path, BASE), env={"WARDEN_AGENT_REGISTRY_KIND": "mlflow"})
    assert "no mlflow section" in info.value.message
    message = _refused(tmp_path, BASE + "registry_kind: s3\n")
    assert "registry_kind 's3'" in message


def test_mlflow_section_without_registry_kind_is_refused(tmp_path: Path) -> None:
    (tmp_path / "mlflow.db").touch()
    message = _refused(tmp_path, BASE + "mlflow: {tracking_uri: sqlite:///mlflow.db}\n")
    assert "registry_kind" in message


def test_every_stage_needs_an_mlflow_alias(tmp_path: Path) -> None:
    (tmp_path / "mlflow.db").touch()
    text = (BASE + MONITORED + "registry_kind: mlflow\n"
            "mlflow: {tracking_uri: sqlite:///mlflow.db, aliases: {production: champion}}\n")
    message = _refused(tmp_path, text)
    assert "'credit'" in message and "staging" in message and "alias" in message


def test_a_governed_model_outside_mlflow_models_is_refused(tmp_path: Path) -> None:
    (tmp_path / "mlflow.db").touch()
    text = (BASE + MONITORED + "registry_kind: mlflow\n"
            "mlflow: {tracking_uri: sqlite:///mlflow.db, models: [other]}\n")
    message = _refused(tmp_path, text)
    assert "credit" in message and "mlflow.models" in message


def test_mlflow_cannot_come_from_the_environment(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_agent_config(_write(tmp_path, BASE), env={"WARDEN_AGENT_MLFLOW": "x"})
    assert "agent.yaml" in info.value.message
