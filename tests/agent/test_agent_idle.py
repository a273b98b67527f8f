"""The idle daemon stays light: ``warden agent run`` on an enrolled node that holds a policy
and has a model configured but no version of it maps no NumPy, SciPy, pyarrow or
scikit-learn shared object, and starts no policy worker — those load with the first
validation (agent/daemon.py's invariant). SIGTERM ends it promptly with exit 0.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.agent.daemon_world import (
    Agents,
    children,
    init_node,
    is_policy_applied,
    make_hub,
    make_trust,
    mapped_objects,
    standard_bundle,
    wait_status_rewrites,
)

HEAVY = ("numpy", "scipy", "pyarrow", "sklearn")


def heavy_objects(pid: int) -> list[str]:
    """Shared objects of the heavy packages mapped into ``pid``: any path with a component
    ``numpy``, ``numpy.libs``, ``pyarrow``, ... (their extension modules and bundled libs)."""
    out = []
    for path in mapped_objects(pid):
        parts = set(Path(path).parts)
        if ".so" in path and any(p in parts or f"{p}.libs" in parts for p in HEAVY):
            out.append(path)
    return sorted(out)


def test_idle_agent_maps_no_heavy_library_and_stops_on_sigterm(
    tmp_path: Path, agents: Agents
) -> None:
    trust = make_trust(tmp_path / "trust")
    hub = make_hub(tmp_path, trust)
    hub.start()
    try:
        data = tmp_path / "validation.csv"
        data.write_text("repaid,sex,income\n1,F,10\n0,M,20\n")
        config = init_node(tmp_path / "nodes", "emea-1", hub, trust, data=data)
        agent = agents.start(config)
        agent.wait_log(lambda o: o.get("msg") == "agent started", 30, "the agent to start")
        with hub.client("compliance") as c:
            c.publish(standard_bundle(trust, 1))
        agent.wait_log(is_policy_applied(1), 10, "policy v1 applied")

        # status.json is rewritten every few passes of the loop: two rewrites after the
        # policy was applied mean the loop has been through scans, pushes and witness
        # rounds with nothing to validate.
        status = config.parent / "status.json"
        wait_status_rewrites(status, 2, 15, "status.json to be rewritten twice")
        doc = json.loads(status.read_text())
        assert doc["policy"] == "standard v1" and doc["hub_reachable"] is True

        assert heavy_objects(agent.pid) == []
        assert children(agent.pid) == [], "a policy worker started with nothing to decide"

        t = time.monotonic()
        assert agent.terminate(timeout=10) == 0
        assert time.monotonic() - t < 5.0
        assert agent.errors() == []
    finally:
        hub.kill()
