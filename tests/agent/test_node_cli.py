"""`warden agent init`, `enroll` and `status` through the real binary, against a real hub."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from agent.config import load_agent_config
from tests.hub.harness import (
    assert_refused_cleanly,
    make_world,
    running_hub,
    warden_process,
)


def _init(tmp: Path, root: Path, ca: Path | None, *extra: str, node: str = "emea-1",
          hub: str = "127.0.0.1:7443") -> object:
    argv = ["agent", "init", "--node-id", node, "--hub", hub, "--root", str(root),
            "--dir", str(tmp / "node"), *extra]
    if ca is not None:
        argv += ["--ca", str(ca)]
    return warden_process(*argv)


def test_init_writes_a_movable_node_directory(tmp_path: Path) -> None:
    world = make_world(tmp_path / "w")
    proc = _init(tmp_path, tmp_path / "w" / "root.json", world.init.ca_cert)
    assert proc.returncode == 0, proc.stderr
    node = tmp_path / "node"
    key_id = proc.stdout.split("key id ")[1].split()[0]
    assert len(key_id) == 64
    assert stat.S_IMODE(os.stat(node / "node.key").st_mode) == 0o600
    assert (node / "root.json").read_bytes() == (tmp_path / "w" / "root.json").read_bytes()
    assert (node / "ca.crt").read_bytes() == world.ca
    assert (node / "models").is_dir()
    text = (node / "agent.yaml").read_text()
    assert text.count("#") > 5  # commented for the operator
    # The directory can move as a whole: every path resolves inside it.
    moved = tmp_path / "elsewhere"
    node.rename(moved)
    cfg = load_agent_config(moved / "agent.yaml", env={})
    assert cfg.node_id == "emea-1" and cfg.ca == moved / "ca.crt"
    assert cfg.root == moved / "root.json" and cfg.node_key == moved / "node.key"


def test_init_never_overwrites_an_identity(tmp_path: Path) -> None:
    world = make_world(tmp_path / "w")
    assert _init(tmp_path, tmp_path / "w" / "root.json", world.init.ca_cert).returncode == 0
    key_before = (tmp_path / "node" / "node.key").read_bytes()
    again = _init(tmp_path, tmp_path / "w" / "root.json", world.init.ca_cert)
    assert_refused_cleanly(again, r"already exists")
    assert (tmp_path / "node" / "node.key").read_bytes() == key_before


@pytest.mark.parametrize("case", ["bad_root", "bad_ca", "no_ca", "bad_node", "bad_hub"])
def test_init_refuses_bad_input_before_writing(tmp_path: Path, case: str) -> None:
    world = make_world(tmp_path / "w")
    root, ca = tmp_path / "w" / "root.json", world.init.ca_cert
    kwargs: dict[str, object] = {}
    if case == "bad_root":
        root = tmp_path / "garbled.json"
        root.write_text("{not json")
    elif case == "bad_ca":
        ca = tmp_path / "ca.crt"
        ca.write_text("hello")
    elif case == "no_ca":
        ca = None  # type: ignore[assignment]
    elif case == "bad_node":
        kwargs["node"] = "../etc"
    else:
        kwargs["hub"] = "no-port"
    proc = _init(tmp_path, root, ca, **kwargs)  # type: ignore[arg-type]
    expected = {"bad_root": "garbled.json", "bad_ca": "PEM", "no_ca": "--ca",
                "bad_node": "node", "bad_hub": "HOST:PORT"}
    assert_refused_cleanly(proc, expected[case])
    assert not (tmp_path / "node" / "node.key").exists()


def test_enroll_pins_origin_and_status_reports(tmp_path: Path) -> None:
    world = make_world(tmp_path / "w")
    with running_hub(world) as hub:
        addr = f"127.0.0.1:{hub.port}"
        assert _init(tmp_path, tmp_path / "w" / "root.json", world.init.ca_cert,
                     hub=addr).returncode == 0
        cfg = tmp_path / "node" / "agent.yaml"
        token = tmp_path / "emea-1.token"
        token.write_text(world.token_for("emea-1") + "\n")
        proc = warden_process("agent", "enroll", "--config", str(cfg), "--token-file", str(token))
        assert proc.returncode == 0, proc.stderr
        assert "test.warden/hub" in proc.stdout
        # The token is single-use: a second enrollment is refused, nothing changes.
        again = warden_process("agent", "enroll", "--config", str(cfg), "--token-file",
                               str(token))
        assert again.returncode != 0 and "Traceback" not in again.stderr
        witness = json.loads((tmp_path / "node" / "witness.json").read_text())
        assert "test.warden/hub" in json.dumps(witness)

    status = warden_process("agent", "status", "--config", str(cfg), "--json")
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["node_id"] == "emea-1"
    assert doc["policy"]["policy"] is None and doc["policy"]["root_version"] == 1
    assert doc["outbox"]["depth"] == 0
    assert doc["witness"]["origin"] == "test.warden/hub"
    text = warden_process("agent", "status", "--config", str(cfg))
    assert text.returncode == 0 and "none received yet" in text.stdout


def test_enroll_token_file_problems_are_clear(tmp_path: Path) -> None:
    world = make_world(tmp_path / "w")
    assert _init(tmp_path, tmp_path / "w" / "root.json", world.init.ca_cert).returncode == 0
    cfg = tmp_path / "node" / "agent.yaml"
    missing = warden_process("agent", "enroll", "--config", str(cfg), "--token-file",
                             str(tmp_path / "nope"))
    assert_refused_cleanly(missing, r"nope: no such token file")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    assert_refused_cleanly(warden_process("agent", "enroll", "--config", str(cfg),
                                          "--token-file", str(empty)), r"expected one token")
